local shared = import '../../guestbook/ports.libsonnet';
[{
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  metadata: { name: 'tools', annotations: { port: std.toString(shared.http) } },
  rules: [],
}]
