// The file that stays inside still renders.
{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'fine' },
  data: { greeting: 'hello' },
}
