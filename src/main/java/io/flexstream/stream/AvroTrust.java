package io.flexstream.stream;

import org.apache.avro.util.ClassSecurityValidator;

/**
 * Avro 1.12 refuses to instantiate generated classes of packages it does not trust ({@code SecurityException ... not
 * trusted}) unless {@code -Dorg.apache.avro.SERIALIZABLE_PACKAGES} names them. The launcher sets that flag, but a
 * consumer embedded in another program (a test's child JVM, a user's application) may not, so the codecs add our own
 * generated package to the global predicate once, keeping whatever the host trusts already.
 */
final class AvroTrust {

    private static final String PACKAGE = "io.flexstream.stream.avro.";
    private static boolean installed;

    private AvroTrust() {
    }

    static synchronized void ensure() {
        if (installed) {
            return;
        }
        ClassSecurityValidator.ClassSecurityPredicate host = ClassSecurityValidator.getGlobal();
        ClassSecurityValidator.setGlobal(new ClassSecurityValidator.ClassSecurityPredicate() {
            @Override
            public boolean isTrusted(Class<?> type) {
                return type.getName().startsWith(PACKAGE) || host.isTrusted(type);
            }

            @Override
            public void forbiddenClass(String className) {
                host.forbiddenClass(className);
            }
        });
        installed = true;
    }
}
