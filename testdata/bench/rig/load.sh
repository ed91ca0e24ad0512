#!/bin/bash
# load.sh COUNT [SIZE] [r|w] [QD]: qemu-img bench against the rig's LUN
# (default 4k writes at QD32); prints qemu-img's "Run completed" line.
C=${1:-200000} S=${2:-4k} M=${3:-w} Q=${4:-32}
W=
[ "$M" = w ] && W=-w
qemu-img bench -t none -n $W -c "$C" -d "$Q" -s "$S" \
	--image-opts driver=iscsi,transport=tcp,portal=127.0.0.1:3399,target=iqn.2026-12.test:rig,lun=0 2>&1 |
	grep -o 'Run completed in [0-9.]* seconds'
