// Pure Java, no Android dependencies: the quad finder, preprocessing, perspective
// rectification and latency statistics. Host-testable (see run_tests.sh).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    systemProperty("parity.dir", file("src/test/resources/parity").absolutePath)
}
