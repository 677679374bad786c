// An object output: one manifest, with importstr and an extVar.
{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'guestbook-settings' },
  data: {
    environment: std.extVar('env'),
    'banner.txt': importstr 'banner.txt',
  },
}
