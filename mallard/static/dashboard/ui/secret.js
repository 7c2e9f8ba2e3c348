// Shared links: the dashboard opened as `?site=…&auth=<secret>` reads that one site, read-only. The
// secret is read from the page's URL once (and kept in the URL so a reload works); every API call sends
// it as the X-Mallard-Share header, which keeps it out of access logs.
export const SECRET = new URLSearchParams(window.location.search).get('auth') || '';

// The headers every API call carries.
export const shareHeaders = () => (SECRET ? { 'X-Mallard-Share': SECRET } : {});

// Links the browser follows itself (exports) cannot carry a header: they carry `auth=`.
export const shareParams = () => (SECRET ? { auth: SECRET } : {});
