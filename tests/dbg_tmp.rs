#[test]
fn dbg() {
    let p = std::env::var("DBG_FILE").unwrap();
    let raw = std::fs::read(p).unwrap();
    let m = bounced::parse::parse(&raw).unwrap();
    println!(
        "from={:?} name={:?} subj={:?} ct={}",
        m.from_address, m.from_name, m.subject, m.content_type
    );
    println!("TEXT<<{}>>", m.text);
    println!(
        "REPORT<<{}>>",
        bounced::classify::layouts::report_part(&m.text)
    );
}
#[test]
fn dbg2() {
    let p = std::env::var("DBG_FILE").unwrap();
    let raw = std::fs::read(p).unwrap();
    let v = bounced::classify::classify(&raw).unwrap();
    println!("{:#?}", v);
}
#[test]
fn dbg3() {
    let p = std::env::var("DBG_FILE").unwrap();
    let raw = std::fs::read(p).unwrap();
    let m = bounced::parse::parse(&raw).unwrap();
    println!("ORIG {:?}", m.original);
    println!("FB {:?}", m.feedback_report);
}
