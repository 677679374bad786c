// An array output: each element is one manifest. TLAs image and labels.
local kube = import 'kube.libsonnet';
local ports = import 'ports.libsonnet';

function(image, labels={})
  [
    kube.deployment('guestbook', image, std.extVar('replicas'), labels),
    kube.service('guestbook', ports.http),
  ]
