ARG BASE=busybox
ARG   TAG="1.36"  OTHER
FROM --platform=$BUILDPLATFORM ${BASE}:${TAG} as Builder
ONBUILD RUN --mount=type=cache,target=/c make
ONBUILD COPY --from=builder /a /b
HEALTHCHECK --interval=30s --timeout=3s \
  CMD wget -q -O- http://localhost/ || exit 1
HEALTHCHECK NONE
HEALTHCHECK CMD ["curl", "-f", "http://x/"]
LABEL a=1 "b c"="d e" f='g h'
LABEL legacy value with spaces
ENV X=1 \
    # a comment inside

    Y=2
EXPOSE 80/tcp 53/udp	8080
VOLUME ["/data", "/logs"]
VOLUME /a /b
STOPSIGNAL SIGTERM
USER nobody:nogroup
MAINTAINER Someone <someone@example.com>
CMD echo "shell form" && \
    echo done
ENTRYPOINT ["/bin/sh", "-c"]
RUN --network=none --security=sandbox echo hi
COPY --chmod=0755 --link --parents a/*/b ./
ADD --checksum=sha256:abc https://example.com/x.tar.gz /x/
frobnicate unknown instruction
RUN echo a\\
RUN echo trailing \
