// An endless tail-recursive loop: no stack grows, only the time budget stops it.
local spin(n) = spin(n + 1) tailstrict;
function(depth) spin(depth)
