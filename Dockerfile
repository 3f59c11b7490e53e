# streamjoin's image, for people with Docker. `make image` builds the same
# image without a daemon (cmd/streamjoin-image); internal/image's tests keep
# the two equivalent: same user, same entrypoint, same port, static binary
# on an empty base.
#
#   docker build -t streamjoin .
#   docker run --rm -p 8080:8080 streamjoin run --brokers … --postgres …

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/streamjoin ./cmd/streamjoin \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/group \
 && mkdir -m 1777 /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/tmp /tmp
COPY --from=build /out/streamjoin /streamjoin
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 8080/tcp
ENTRYPOINT ["/streamjoin"]
