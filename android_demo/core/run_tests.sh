#!/usr/bin/env bash
# Compile the pure-Java core (Java 8 level, as Android's toolchain accepts) and run
# its JUnit 4 tests on the host JVM. JUnit comes from Debian's junit4 package;
# Gradle's Android plugin and Google's Maven are not needed.
set -euo pipefail
cd "$(dirname "$0")"
CP=/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar
for jar in ${CP//:/ }; do
  [ -f "$jar" ] || { echo "missing $jar: apt-get install junit4" >&2; exit 2; }
done
rm -rf build/host && mkdir -p build/host/main build/host/test
javac --release 8 -Xlint:-options -d build/host/main $(find src/main/java -name '*.java')
javac --release 8 -Xlint:-options -cp "build/host/main:$CP" -d build/host/test $(find src/test/java -name '*.java')
java -Dparity.dir=src/test/resources/parity -cp "build/host/main:build/host/test:$CP" dev.edgepipe.core.RunAll
