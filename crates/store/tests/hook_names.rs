//! The pool of host-end names listed ahead on the fast path's chain: spare, given, retired,
//! forgotten; a name is given out once.

use berth_store::{Result, Store};

#[test]
fn names_are_given_once_then_retired_then_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let names: Vec<String> = (0..3).map(|i| format!("bth{i}")).collect();
    store
        .write(|tx| -> Result<()> {
            assert_eq!(tx.take_hook_name()?, None);
            tx.add_hook_names(&names)?;
            tx.add_hook_names(&names[..1])?; // again: no change
            assert_eq!(tx.spare_hook_names()?, 3);
            Ok(())
        })
        .unwrap();
    let given = store
        .write(|tx| -> Result<Vec<String>> {
            let mut given = Vec::new();
            while let Some(n) = tx.take_hook_name()? {
                given.push(n);
            }
            Ok(given)
        })
        .unwrap();
    let mut sorted = given.clone();
    sorted.sort();
    assert_eq!(sorted, names, "each name given out exactly once");
    store
        .write(|tx| -> Result<()> {
            assert_eq!(tx.spare_hook_names()?, 0);
            assert!(tx.is_hook_name("bth1")?);
            assert!(!tx.is_hook_name("bthx")?);
            assert_eq!(tx.retire_hook_name("bth1")?, 1);
            assert_eq!(
                tx.retire_hook_name("bth1")?,
                1,
                "retiring twice counts once"
            );
            assert_eq!(
                tx.retire_hook_name("bthx")?,
                1,
                "an unknown name changes nothing"
            );
            assert_eq!(tx.retire_hook_name("bth2")?, 2);
            assert_eq!(tx.retired_hook_names()?, ["bth1", "bth2"]);
            tx.forget_hook_names(&tx.retired_hook_names()?)?;
            assert_eq!(tx.hook_names()?, ["bth0"]);
            assert_eq!(tx.take_hook_name()?, None, "bth0 is still given");
            Ok(())
        })
        .unwrap();
}
