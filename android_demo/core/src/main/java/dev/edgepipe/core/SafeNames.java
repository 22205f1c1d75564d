package dev.edgepipe.core;

import java.util.regex.Pattern;

/**
 * The benchmark activity is exported, so any app on the phone can start it with any extras.
 * Where it writes is therefore never a path it is given: only a plain file name, resolved
 * inside the app's own files folder.
 */
public final class SafeNames {
    private SafeNames() {}

    private static final Pattern PLAIN = Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}");

    /** A name with no folder part, no "..", no leading dot, at most 100 characters. */
    public static boolean isPlainFileName(String name) {
        return name != null && PLAIN.matcher(name).matches() && !name.contains("..");
    }
}
