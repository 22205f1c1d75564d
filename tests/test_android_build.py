"""The Android app's Gradle wrapper is in the repository and asks for the Gradle
version its Android Gradle plugin needs, so `./gradlew assembleDebug` (the
README's command) exists on a fresh clone. The APK itself cannot be built in CI
(no Google Maven here); see android_demo/README.md."""
import os
import re
import zipfile
from pathlib import Path

ANDROID = Path(__file__).resolve().parent.parent / "android_demo"
# The Android Gradle plugin's minimum Gradle, from its release notes (major.minor -> Gradle)
AGP_MIN_GRADLE = {"8.3": "8.4", "8.4": "8.6", "8.5": "8.7", "8.6": "8.7", "8.7": "8.9", "8.8": "8.10.2",
                  "8.9": "8.11.1"}


def _agp_version() -> str:
    text = (ANDROID / "build.gradle.kts").read_text()
    return re.search(r'id\("com\.android\.application"\) version "([\d.]+)"', text).group(1)


def test_wrapper_files_exist():
    assert os.access(ANDROID / "gradlew", os.X_OK), "android_demo/gradlew must be executable"
    assert (ANDROID / "gradlew.bat").is_file()
    with zipfile.ZipFile(ANDROID / "gradle/wrapper/gradle-wrapper.jar") as jar:
        assert "org/gradle/wrapper/GradleWrapperMain.class" in jar.namelist()


def test_wrapper_names_the_gradle_the_plugin_needs():
    agp = ".".join(_agp_version().split(".")[:2])
    assert agp in AGP_MIN_GRADLE, f"AGP {agp}: add its minimum Gradle version to AGP_MIN_GRADLE"
    props = dict(line.split("=", 1) for line in (ANDROID / "gradle/wrapper/gradle-wrapper.properties")
                 .read_text().splitlines() if "=" in line and not line.startswith("#"))
    url = props["distributionUrl"].replace("\\:", ":")
    assert re.fullmatch(rf"https://services\.gradle\.org/distributions/gradle-{re.escape(AGP_MIN_GRADLE[agp])}"
                        r"-(bin|all)\.zip", url), url
