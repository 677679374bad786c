// Evaluated first: renders.
function(depth) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fine' }, data: { depth: std.toString(depth) } }
