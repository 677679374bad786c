// No Application renders this directory: a notice says so.
{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'legacy' } }
