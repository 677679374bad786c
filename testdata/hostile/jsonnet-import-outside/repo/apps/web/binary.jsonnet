// importbin of a file outside.
{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'binary' },
  data: { stolen: std.toString(importbin '../../../../../../../../../../../../..{{OUTSIDE}}/secret.txt') },
}
