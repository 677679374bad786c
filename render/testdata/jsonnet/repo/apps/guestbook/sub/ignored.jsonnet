// Not rendered: the guestbook source does not recurse.
{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'never' } }
