// `AnnotationValue` is sealed: a type of the user's own converts to a string, number or bool
// first (its conversion is the crate's, so that it can change with the crate's dependencies).
struct OrderId(u64);

impl xray_lambda::AnnotationValue for OrderId {}

fn main() {}
