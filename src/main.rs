fn main() {
    println!("shadowscope");
}
