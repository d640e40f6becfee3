package io.flexstream.tier;

import java.util.Locale;

/** Byte sizes as people write them: "512m", "2g", "1.5GiB", "1048576". Binary units throughout. */
public final class Sizes {

    private Sizes() {
    }

    public static long parse(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT).replace("ib", "").replace("b", "");
        long unit = 1;
        if (!s.isEmpty()) {
            switch (s.charAt(s.length() - 1)) {
                case 'k' -> unit = 1L << 10;
                case 'm' -> unit = 1L << 20;
                case 'g' -> unit = 1L << 30;
                case 't' -> unit = 1L << 40;
                default -> unit = 1;
            }
        }
        String number = unit == 1 ? s : s.substring(0, s.length() - 1);
        try {
            double value = Double.parseDouble(number);
            if (value < 0) {
                throw new NumberFormatException();
            }
            return (long) (value * unit);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a size: '" + text + "' (examples: 512m, 2g, 1.5GiB, 1048576)");
        }
    }

    public static String format(long bytes) {
        if (bytes >= 1L << 30) {
            return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
        }
        if (bytes >= 1L << 20) {
            return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
        }
        return String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
    }
}
