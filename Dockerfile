# tillstream container image: all binaries, Debian slim runtime, non-root.
# Build: docker build -t tillstream .   (the test command lints this file;
# its build stage runs the same configure/build steps as scripts/setup.sh)

FROM debian:bookworm-20241111 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake ninja-build pkg-config \
      librdkafka-dev libavro-dev libcurl4-openssl-dev libcjson-dev libcmocka-dev libmicrohttpd-dev \
      libphonenumber-dev libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include ./include
COPY src ./src
COPY tools ./tools
COPY tests ./tests
COPY bench ./bench
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_WERROR=ON -DBUILD_TESTING=OFF \
 && cmake --build build -j "$(nproc)" \
 && cmake --install build --prefix /opt/tillstream

FROM debian:bookworm-20241111-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librdkafka1 libavro23 libcurl4 libcjson1 libmicrohttpd12 libphonenumber8 ca-certificates kcat \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tillstream
COPY --from=build /opt/tillstream/bin/ /usr/local/bin/
COPY samples/config.example.json /etc/tillstream/config.example.json
USER 10001
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/tillstream-orders"]
CMD ["--config", "/etc/tillstream/config.json"]
