//! `EPATROL_ISA` reaches the one CPU dispatch every kernel uses (`Isa::best`): this test
//! binary runs itself again with `EPATROL_ISA=scalar` and the child checks the choice and
//! that the matcher's default path then gives the scalar kernel's scores.

use std::process::Command;

use epatrol_engine::finger::mcc::{self, MccTemplate};
use epatrol_engine::finger::synth;
use epatrol_engine::vector::Isa;

const CHILD: &str = "EPATROL_ISA_TEST_CHILD";

#[test]
fn forcing_the_scalar_level_reaches_the_dispatch() {
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(Isa::best(), Isa::scalar(), "EPATROL_ISA=scalar was not honoured");
        let a = synth::finger(11);
        let b = synth::impression(&a, 12);
        let (a, b) = (MccTemplate::new(&a), MccTemplate::new(&b));
        assert_eq!(mcc::similarity(&a, &b).to_bits(), mcc::similarity_with(Isa::scalar(), &a, &b).to_bits());
        println!("child checked");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", "forcing_the_scalar_level_reaches_the_dispatch", "--nocapture", "--test-threads=1"])
        .env("EPATROL_ISA", "scalar")
        .env(CHILD, "1")
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("child checked"), "the child did not run the check:\n{stdout}");
}
