// After the loop: the target's time budget is spent, so it is named as not evaluated.
function(depth) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after' } }
