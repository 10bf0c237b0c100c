#!/bin/sh
# Puts `segsync` on the user's PATH: a symbolic link <bin dir>/segsync -> <clone>/bin/segsync, where the bin
# dir is SEGSYNC_BIN_DIR or ~/.local/bin (on PATH by default in most Linux distributions' ~/.profile and in
# systemd's user environment). Called by `npm start`; safe to run again. SEGSYNC_BIN_DIR=none skips it.
# A link that points into another clone is left alone (and said so): the user chose that one.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${SEGSYNC_BIN_DIR:-${HOME:-}/.local/bin}
[ "$dir" = none ] || [ "$dir" = /.local/bin ] && exit 0
link="$dir/segsync"
want="$root/bin/segsync"
if [ -L "$link" ]; then
  have=$(readlink "$link")
  if [ "$have" != "$want" ] && [ -e "$have" ]; then
    echo "segsync: $link points to $have (another clone); left as it is" >&2
    exit 0
  fi
elif [ -e "$link" ]; then
  echo "segsync: $link exists and is not a link; left as it is (run $want directly)" >&2
  exit 0
fi
mkdir -p "$dir"
ln -sfn "$want" "$link"
case ":$PATH:" in
  *":$dir:"*) echo "segsync: the segsync command is $link" >&2 ;;
  *) echo "segsync: the segsync command is $link; $dir is not on your PATH yet: export PATH=\"$dir:\$PATH\" (or open a new login shell)" >&2 ;;
esac
