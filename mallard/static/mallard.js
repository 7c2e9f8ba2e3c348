/* mallard.js: cookieless tracker, Mallard Metrics wire format. Opt-out: localStorage.mallard_ignore='true'.
data-404: a pageview of a page with <meta name="mallard-404"> is followed by a "404" event, props {path}. */
(function(w,d){try{
var s=d.currentScript||d.querySelector('script[data-domain]'),A=n=>s.getAttribute('data-'+n),
B=n=>A(n)!=null,D=A('domain'),E=A('api'),L=w.location,N=w.navigator,H=w.history,
Q=w.mallard&&w.mallard.q,h=B('hash'),R=d.referrer||null,l,u,M,
X=(A('download-ext')||'pdf,zip,csv,xlsx,docx,pptx,odt,txt,epub,7z,rar,gz,dmg,pkg,exe,msi,apk,iso,mp3,wav,mp4,mov,avi').toLowerCase().split(/[\s,.]+/);
if(!D)return;
if(!E){u=new URL(s.src);E=u.origin+u.pathname.replace(/(\/js\/script\.js|\/[^/]*)$/,'/api/event')}
try{if(new URL(R).host==L.host)R=null}catch(e){R=null}
var O=()=>{try{if(localStorage.getItem('mallard_ignore')==='true')return 1}catch(e){}
return B('honor-dnt')&&(N.doNotTrack==='1'||N.globalPrivacyControl===true)||!B('include-local')&&
(L.protocol=='file:'||/^(localhost|127\.0\.0\.1|\[::1\])$/.test(L.hostname))},
S=(n,o)=>{o=o||{};var c=o.callback,p=o.props,j,
b={d:D,n:n,u:o.url||(h?L.href:L.href.split('#')[0]),r:'referrer'in o?o.referrer||null:R,w:w.innerWidth};
if(O())return c&&c({status:0});
if(p)b.p=JSON.stringify(p);
if(o.revenue!=null)b.ra=+o.revenue;
if(o.currency)b.rc=''+o.currency;
j=JSON.stringify(b);
if(!c)try{if(N.sendBeacon(E,new Blob([j],{type:'text/plain'})))return}catch(e){}
fetch(E,{method:'POST',body:j,keepalive:true,headers:{'Content-Type':'text/plain'}})
.then(r=>c&&c({status:r.status}),()=>c&&c({status:0}))},
P=()=>{try{var k=L.pathname+L.search+(h?L.hash:'');if(k==l||d.visibilityState=='prerender')return;
S('pageview',{referrer:l==null?R:null});l=k;
if(B('404')&&d.querySelector('meta[name="mallard-404"]'))S('404',{props:{path:L.pathname}})}catch(e){}},
C=e=>{try{if(e.button>1)return;
var a=e.target.closest('a[href]'),x=a&&new URL(a.href),f=x&&x.pathname.toLowerCase().split('.').pop();
if(!x||!/^http/.test(x.protocol))return;
if(B('outbound')&&x.host!=L.host)S('Outbound Link: Click',{props:{url:a.href}});
else if(B('downloads')&&X.includes(f))S('File Download',{props:{url:x.origin+x.pathname}})}catch(e){}};
M=w.mallard=(n,o)=>{try{S(n,o)}catch(e){}};
['pushState','replaceState'].forEach(m=>{var f=H[m];H[m]=function(){var r=f.apply(this,arguments);P();return r}});
w.addEventListener('popstate',P);
if(h)w.addEventListener('hashchange',P);
if(d.visibilityState=='prerender')d.addEventListener('visibilitychange',P);
d.addEventListener('click',C,true);d.addEventListener('auxclick',C,true);
P();
(Q||[]).forEach(a=>M(...a))
}catch(e){}})(window,document);
