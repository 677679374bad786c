// A tiny library, found through directory.jsonnet.libs.
{
  labels(name, extra={}):: { 'app.kubernetes.io/name': name } + extra,
  deployment(name, image, replicas, labels={}):: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: name, labels: $.labels(name, labels) },
    spec: {
      replicas: replicas,
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      template: {
        metadata: { labels: $.labels(name, labels) },
        spec: { containers: [{ name: name, image: image }] },
      },
    },
  },
  service(name, port):: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: name },
    spec: { selector: { 'app.kubernetes.io/name': name }, ports: [{ port: port, targetPort: port }] },
  },
}
