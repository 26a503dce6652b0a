//! The one table of names and annotation keys that the macros (at compile time) and the
//! runtime (at run time) must accept and reject alike: `xray-lambda-macros` fails to compile
//! exactly the rejected ones, and `xray-lambda` writes exactly the accepted ones unchanged.

/// Subsegment names, and whether X-Ray accepts each as it is.
pub const NAMES: &[(&str, bool)] = &[
    ("handler", true),
    ("DynamoDB GetItem", true),
    ("checkout/v2:pay@eu-west-1", true),
    ("a_b.c:d/e%f&g#h=i+j\\k-l@m", true),
    ("Überweisung", true),
    ("注文", true),
    ("tab\there", false),
    ("new\nline", false),
    ("no-break\u{a0}space", false),
    ("quote\"d", false),
    ("semi;colon", false),
    ("", false),
    // 200 bytes: the most.
    ("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", true),
    // 201 bytes.
    ("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", false),
    // 101 two-byte letters: 101 characters, 202 bytes.
    ("ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé", false),
];

/// Annotation keys, and whether X-Ray indexes each as it is.
pub const ANNOTATION_KEYS: &[(&str, bool)] = &[
    ("user_id", true),
    ("OrderTotal2", true),
    ("_", true),
    ("user-id", false),
    ("user id", false),
    ("naïve", false),
    ("", false),
];
