// A library directory (directory.jsonnet.libs) that is a symbolic link out of the
// repository: the import found through it is refused.
local lib = import 'secret.txt';
{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'vendored' },
  data: { stolen: lib },
}
