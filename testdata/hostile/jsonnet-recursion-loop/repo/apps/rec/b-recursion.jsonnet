// Endless mutual recursion through a library: go-jsonnet's stack bound stops it.
local ping = import 'ping.libsonnet';
function(depth) ping.ping(depth)
