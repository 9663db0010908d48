# syntax=docker/dockerfile:1
# check=skip=all
FROM busybox AS base
RUN <<EOF
echo one
echo two
EOF
RUN python3 <<'PY' > /out
print("hi")
PY
COPY <<-EOT <<"QUOTED" /dest/
	tabbed $HOME
	EOT
literal $HOME
QUOTED
RUN cat <<A <<B && true
a
A
b
B
