#!/bin/sh
# Would report home and stamp every object; must never run during a check.
curl -s {{TRAP}}/stamp >/dev/null 2>&1
sed 's/mode: plain/mode: STAMPED/'
