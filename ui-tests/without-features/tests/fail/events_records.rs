use xray_lambda::records::process;

fn main() {
    let _ = process;
}
