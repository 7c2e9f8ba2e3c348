/* mallard.js: cookieless tracker, Mallard Metrics wire format; window.mallard and window.plausible.
Features from the file name (js/script.hash.js), data- attributes or plausible.init(); docs/tracking-script.md. */
(function(w,d){try{
var s=d.currentScript||d.querySelector('script[data-domain]'),G=n=>s.getAttribute(n),A=n=>G('data-'+n),
B=n=>A(n)!=null,L=w.location,N=w.navigator,H=w.history,U=(s.src||'').split('?')[0],Y0=w.plausible,
V=(U.match(/\/(?:script|plausible)\.([\w.-]+)\.js$/)||[0,''])[1].split('.'),
F=(x,y)=>V.includes(x)||B(x)||!!y&&B(y),
Im=/\/pa-[\w-]+\.js$/.test(U)||!!(Y0&&Y0.init),I=A('include'),J=A('exclude'),
R=d.referrer||null,W={},l,u,M,D,E,h,T,Ob,Fd,Lc,Cp,Tr,e0=0,et=0,sm=0,ss=0,dh=0,eu,ep,on,
X=(A('download-ext')||G('file-types')||'pdf,zip,csv,xlsx,docx,pptx,odt,txt,rtf,epub,7z,rar,gz,dmg,pkg,exe,msi,apk,iso,key,pps,ppt,mp3,wav,wma,midi,mp4,mpeg,mov,avi,wmv')
.toLowerCase().split(/[\s,.]+/).concat((G('add-file-types')||'').toLowerCase().split(','));
try{if(new URL(R).host==L.host)R=null}catch(e){R=null}
(s.getAttributeNames?s.getAttributeNames():[]).forEach(a=>{if(a.slice(0,6)=='event-')W[a.slice(6)]=G(a)});
var Y=(p,x)=>x&&x.split(',').some(g=>new RegExp('^'+g.trim().replace(/\*\*/g,'.*').replace(/([^.])\*/g,'$1[^\\s/]*')+'/?$').test(p)),
O=n=>{try{if(localStorage.getItem('mallard_ignore')==='true'||localStorage.getItem('plausible_ignore')==='true')return 1}catch(e){}
var p=L.pathname+(h?L.hash:'');
return n=='pageview'&&(I&&!Y(p,I)||Y(p,J))||B('honor-dnt')&&(N.doNotTrack==='1'||N.globalPrivacyControl===true)||
!Lc&&(L.protocol=='file:'||/^(localhost|127\.0\.0\.1|\[::1\])$/.test(L.hostname))},
S=(n,o)=>{o=o||{};var c=o.callback,v=o.revenue,x=typeof Cp=='function'?Cp(n):Cp,j,
p=Object.assign({},W,typeof x=='object'&&x,o.props||o.meta),
b={d:D,n:n,u:o.url||o.u||(h?L.href:L.href.split('#')[0]),r:'referrer'in o?o.referrer||null:R,w:w.innerWidth};
if(h)b.h=1;
if(o.interactive===false)b.i=false;
if(Object.keys(p).length)b.p=p;
if(v!=null&&typeof v=='object'){o=v;v=v.amount}
if(v!=null)b.ra=+v;
if(o.currency)b.rc=''+o.currency;
if(O(n)||Tr&&!(b=Tr(b))){if(n=='pageview')eu=0;return c&&c({status:0})}
if(b.p&&typeof b.p=='object')b.p=JSON.stringify(b.p);
if(n=='pageview'){eu=b.u;ep=b.p;ss=0;et=0;e0=Date.now();Lz()}
j=JSON.stringify(b);
if(!c)return Bc(j);
Bc(j,1).then(r=>c({status:r.status}),()=>c({status:0}))},
Bc=(j,f)=>{if(!f)try{if(N.sendBeacon(E,new Blob([j],{type:'text/plain'})))return}catch(e){}
return fetch(E,{method:'POST',body:j,keepalive:true,headers:{'Content-Type':'text/plain'}})},
Ht=()=>Math.max((d.body||{}).scrollHeight||0,(d.documentElement||{}).scrollHeight||0),
Sp=()=>{var v=w.innerHeight||0;dh=Ht();return dh<=v?dh:(w.scrollY||0)+v},
Et=()=>et+(e0?Date.now()-e0:0),
Z=()=>{var t=Et(),b;if(eu&&(ss<sm||t>=3000)){ss=sm;e0=et=0;
b={n:'engagement',d:D,u:eu,sd:Math.min(100,Math.round(sm/(dh||1)*100)),e:t};if(ep)b.p=ep;if(h)b.h=1;Bc(JSON.stringify(b))}},
Hd=()=>{try{et=Et();e0=0;Z()}catch(e){}},
Vz=()=>{d.visibilityState=='visible'&&(!d.hasFocus||d.hasFocus())?e0||(e0=Date.now()):Hd()},
Lz=()=>{if(!on){on=1;d.addEventListener('visibilitychange',Vz);w.addEventListener('blur',Vz);w.addEventListener('focus',Vz);w.addEventListener('pagehide',Hd)}},
P=()=>{try{var k=L.pathname+L.search+(h?L.hash:'');if(k==l||d.visibilityState=='prerender')return;
if(on){Z();sm=Sp()}S('pageview',{referrer:l==null?R:null});l=k;
if(B('404')&&d.querySelector('meta[name="mallard-404"]'))S('404',{props:{path:L.pathname}})}catch(e){}},
K=(t,f)=>{for(var i=0,g,o,m;t&&i<4;i++,t=t.parentNode){if(f&&t.tagName=='FORM')return;
o={props:{},revenue:{}};[].forEach.call(t.classList||[],c=>{if(m=c.match(/^plausible-(event|revenue)-(.+?)(=|--)(.+)$/))
m[1]=='revenue'?o.revenue[m[2]]=m[4]:m[2].toLowerCase()=='name'?o.n=m[4].replace(/\+/g,' '):o.props[m[2]]=m[4].replace(/\+/g,' ')});
g=g||o.n&&o}return g},
C=e=>{try{if(e.button>1)return;
var a=e.target.closest&&e.target.closest('a[href]'),x=a&&new URL(a.href),f=x&&x.pathname.toLowerCase().split('.').pop(),
g=T&&K(e.target,1);
if(g){if(a)g.props.url=a.href;return S(g.n,g)}
if(!x||!/^http/.test(x.protocol))return;
if(Ob&&x.host!=L.host)S('Outbound Link: Click',{props:{url:a.href}});
else if(Fd&&X.includes(f))S('File Download',{props:{url:x.origin+x.pathname}})}catch(e){}},
Go=o=>{try{o=o||{};if(M)return o.logging!==false&&console.warn('plausible.init() ran already: ignored');
var q=o.fileDownloads,Q=[].concat(w.mallard&&w.mallard.q||[],w.plausible&&w.plausible.q||[]);
D=o.domain||A('domain')||Im&&L.hostname;if(!D)return;
E=o.endpoint||A('api');if(!E){u=new URL(s.src);E=u.origin+u.pathname.replace(/(\/js\/[\w.-]+\.js|\/[^/]*)$/,'/api/event')}
h=F('hash')||!!o.hashBasedRouting;T=F('tagged-events')||Im;Ob=F('outbound-links','outbound')||o.outboundLinks;
Fd=F('file-downloads','downloads')||q;Lc=F('local','include-local')||o.captureOnLocalhost;Cp=o.customProperties;
Tr=typeof o.transformRequest=='function'&&o.transformRequest;if(q&&Array.isArray(q.fileExtensions))X=q.fileExtensions;
M=w.mallard=w.plausible=(n,o)=>{try{S(n,o)}catch(e){}};M.init=Go;M.l=1;
if(!F('manual')&&o.autoCapturePageviews!==false){['pushState','replaceState'].forEach(m=>{var f=H[m];H[m]=function(){var r=f.apply(this,arguments);P();return r}});
w.addEventListener('popstate',P);
if(h)w.addEventListener('hashchange',P);
if(d.visibilityState=='prerender')d.addEventListener('visibilitychange',P);
P()}
sm=Sp();w.addEventListener('load',()=>{dh=Ht()});d.addEventListener('scroll',()=>{var x=Sp();if(x>sm)sm=x},{passive:true});
d.addEventListener('click',C,true);d.addEventListener('auxclick',C,true);
if(T)d.addEventListener('submit',e=>{try{var g=K(e.target);g&&S(g.n,g)}catch(x){}},true);
if(o.formSubmissions)d.addEventListener('submit',e=>{try{var f=e.target;(f.hasAttribute('novalidate')||f.checkValidity())&&!K(f)&&M('Form: Submission')}catch(x){}},true);
Q.forEach(a=>M(...a))}catch(e){}};
if(Im){Y0&&Y0.l?Y0.init():(Y0=w.plausible=Y0||function(){(Y0.q=Y0.q||[]).push(arguments)},Y0.o?Go(Y0.o):Y0.init=Go)}else Go()
}catch(e){}})(window,document);
