// An absolute import path.
{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'absolute' },
  data: { stolen: importstr '{{OUTSIDE}}/secret.txt' },
}
