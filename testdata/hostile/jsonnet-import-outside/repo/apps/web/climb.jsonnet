// Climbs out of the repository with ../ to read a file beside it.
{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'climb' },
  data: { stolen: importstr '../../../../../../../../../../../../../..{{OUTSIDE}}/secret.txt' },
}
