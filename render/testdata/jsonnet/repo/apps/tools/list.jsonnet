// A List object: Argo CD applies its items.
{
  apiVersion: 'v1',
  kind: 'List',
  items: [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tool-' + n } }
    for n in ['a', 'b']
  ],
}
