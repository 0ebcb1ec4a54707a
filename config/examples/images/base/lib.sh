# Shared by the example pipelines: `. /scripts/lib.sh`. Sets the Kratix paths and yget.
IN=/kratix/input/object.yaml OUT=/kratix/output META=/kratix/metadata

# yget FILE a.b.c: the plain scalar at that path of a block-style YAML mapping indented
# by two spaces (as object.yaml is written). Quotes around the value are removed.
yget() {
  awk -v want="$2" -v q="'" '
    /^[[:space:]]*(#|$)/ { next }
    {
      match($0, /^ */); depth = RLENGTH / 2
      key = substr($0, RLENGTH + 1)
      if (key !~ /^[A-Za-z0-9_.\/-]+:/) next
      val = key; sub(/:.*/, "", key); sub(/^[^:]*:[ ]*/, "", val)
      path[depth] = key; p = path[0]
      for (i = 1; i <= depth; i++) p = p "." path[i]
      if (p == want && val != "") {
        gsub(/^"|"$/, "", val); gsub("^" q "|" q "$", "", val); print val; exit
      }
    }' "$1"
}
