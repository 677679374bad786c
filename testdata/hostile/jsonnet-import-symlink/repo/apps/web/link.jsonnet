// A file in the source directory that is a symbolic link out of the repository.
{
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'link' },
  data: { stolen: importstr 'leak.txt' },
}
