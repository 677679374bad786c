// A billion-element array: go-jsonnet builds it eagerly.
std.makeArray(1e9, function(i) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-' + i } })
