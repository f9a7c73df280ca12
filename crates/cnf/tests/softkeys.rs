//! Issue 24 item 2: the SIP soft-key file in the form enterprise SIP firmware reads.
//!
//! The shape replayed here is usecallmanager.nz's "Soft Keys" page (soft-keys.html of
//! usecallmanagernz/usecallmanagernz.github.io): `softKeyCfg/typeSoftKey/softKeyDef[@keyID]`
//! with numeric `tag`, `eventID` and `helpID`, then `softKeySets/softKeySet[@id]` naming
//! call states, each listing only keys the state accepts and its mandatory key. The numbers
//! and the valid-key lists below are the facts that page documents.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// (keyID, tag, eventID) as the firmware documentation gives them.
const DOCUMENTED: &[(&str, u32, u32)] = &[
    ("Undefined", 0, 0),
    ("Redial", 1, 1),
    ("NewCall", 2, 2),
    ("Hold", 3, 3),
    ("Transfer", 4, 4),
    ("CFwdAll", 5, 5),
    ("<<", 8, 8),
    ("EndCall", 9, 9),
    ("Resume", 10, 10),
    ("Answer", 11, 11),
    ("Confrn", 13, 13),
    ("Park", 14, 14),
    ("Join", 15, 15),
    ("MeetMe", 16, 16),
    ("PickUp", 17, 17),
    ("GPickUp", 18, 18),
    ("RmLstC", 57, 19),
    ("CallBack", 65, 20),
    ("DND", 63, 69),
    ("QRT", 75, 22),
    ("MCID", 76, 27),
    ("Select", 78, 29),
    ("ConfList", 79, 30),
    ("iDivert", 80, 31),
    ("OPickUp", 91, 34),
    ("HLog", 92, 35),
    ("AbbrDial", 7740, 71),
    ("Record", 7747, 74),
];

/// Call state -> (keys it accepts, its mandatory key if any).
fn valid_sets() -> BTreeMap<&'static str, (Vec<&'static str>, Option<&'static str>)> {
    let mut m = BTreeMap::new();
    m.insert(
        "On Hook",
        (
            vec![
                "Redial",
                "NewCall",
                "DND",
                "CFwdAll",
                "HLog",
                "PickUp",
                "GPickUp",
                "OPickUp",
                "CallBack",
                "MeetMe",
                "QRT",
                "Undefined",
            ],
            Some("NewCall"),
        ),
    );
    m.insert(
        "Off Hook",
        (
            vec![
                "Redial",
                "EndCall",
                "DND",
                "CFwdAll",
                "HLog",
                "PickUp",
                "GPickUp",
                "OPickUp",
                "AbbrDial",
                "Undefined",
            ],
            None,
        ),
    );
    m.insert(
        "Off Hook With Feature",
        (
            vec!["Redial", "EndCall", "DND", "AbbrDial", "Undefined"],
            None,
        ),
    );
    m.insert(
        "Digits After First",
        (
            vec!["EndCall", "<<", "DND", "AbbrDial", "Undefined"],
            Some("<<"),
        ),
    );
    m.insert(
        "Ring Out",
        (vec!["EndCall", "DND", "CallBack", "Undefined"], None),
    );
    m.insert(
        "Connected",
        (
            vec![
                "Hold",
                "EndCall",
                "Transfer",
                "Park",
                "Confrn",
                "ConfList",
                "RmLstC",
                "Record",
                "iDivert",
                "DND",
                "HLog",
                "QRT",
                "MCID",
                "Select",
                "Join",
                "Undefined",
            ],
            Some("EndCall"),
        ),
    );
    m.insert("Connected No Feature", (vec!["EndCall", "Undefined"], None));
    m.insert(
        "Connected Transfer",
        (
            vec!["EndCall", "Transfer", "CallBack", "QRT", "Undefined"],
            Some("Transfer"),
        ),
    );
    m.insert(
        "Connected Conference",
        (
            vec!["EndCall", "Confrn", "DND", "QRT", "Undefined"],
            Some("Confrn"),
        ),
    );
    m.insert(
        "On Hold",
        (
            vec![
                "Resume",
                "NewCall",
                "iDivert",
                "DND",
                "Select",
                "Join",
                "Undefined",
            ],
            Some("Resume"),
        ),
    );
    m.insert(
        "Ring In",
        (vec!["Answer", "iDivert", "DND", "Undefined"], None),
    );
    m.insert("Remote In Use", (vec![], None));
    m
}

#[derive(Default, Debug)]
struct Parsed {
    /// keyID -> (tag, eventID, helpID) as text.
    defs: Vec<(String, String, String, String)>,
    sets: Vec<(String, Vec<String>)>,
}

fn parse(xml: &[u8]) -> Parsed {
    let mut r = Reader::from_reader(xml);
    let mut out = Parsed::default();
    let mut path: Vec<String> = Vec::new();
    let mut cur_def: Option<(String, String, String, String)> = None;
    let mut buf = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> String {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned()
            })
            .unwrap_or_default()
    };
    loop {
        match r.read_event_into(&mut buf).unwrap() {
            Event::Start(e) => {
                let name = e.name().as_ref().to_string();
                match name.as_str() {
                    "softKeyDef" => {
                        cur_def = Some((
                            attr(&e, "keyID"),
                            String::new(),
                            String::new(),
                            String::new(),
                        ))
                    }
                    "softKeySet" => out.sets.push((attr(&e, "id"), Vec::new())),
                    _ => {}
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_string();
                match name.as_str() {
                    "softKeySet" => out.sets.push((attr(&e, "id"), Vec::new())),
                    "softKey" => out.sets.last_mut().unwrap().1.push(attr(&e, "keyID")),
                    _ => {}
                }
            }
            Event::Text(t) => {
                let text = t.trim().to_string();
                if let (Some(d), Some(leaf)) = (cur_def.as_mut(), path.last()) {
                    match leaf.as_str() {
                        "tag" => d.1 = text,
                        "eventID" => d.2 = text,
                        "helpID" => d.3 = text,
                        _ => {}
                    }
                }
            }
            Event::End(e) => {
                if e.name().as_ref() == "softKeyDef" {
                    out.defs.push(cur_def.take().unwrap());
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

#[test]
fn sip_soft_key_file_has_numeric_tags_events_and_documented_key_ids() {
    let documented: BTreeMap<&str, (u32, u32)> =
        DOCUMENTED.iter().map(|(k, t, e)| (*k, (*t, *e))).collect();
    let valid = valid_sets();
    for template in cnf::catalog::SOFTKEY_TEMPLATES {
        let file = cnf::render_softkeys(template);
        let p = parse(&file.bytes);
        assert!(!p.defs.is_empty(), "{template}: no softKeyDef");
        for (key, tag, event, help) in &p.defs {
            let (t, e) = documented
                .get(key.as_str())
                .unwrap_or_else(|| panic!("{template}: key {key:?} is not one SIP firmware knows"));
            assert_eq!(
                tag.parse::<u32>().ok(),
                Some(*t),
                "{template}: {key} tag {tag:?}"
            );
            assert_eq!(
                event.parse::<u32>().ok(),
                Some(*e),
                "{template}: {key} eventID {event:?}"
            );
            assert!(
                help.parse::<u32>().is_ok(),
                "{template}: {key} helpID {help:?}"
            );
        }
        let defined: Vec<&str> = p.defs.iter().map(|d| d.0.as_str()).collect();
        assert!(!p.sets.is_empty());
        for (state, keys) in &p.sets {
            let (ok, mandatory) = valid
                .get(state.as_str())
                .unwrap_or_else(|| panic!("{template}: unknown call state {state:?}"));
            assert!(keys.len() <= 16, "{template}: {state}: at most 16 keys");
            for k in keys {
                assert!(
                    ok.contains(&k.as_str()),
                    "{template}: {k} not valid in {state}"
                );
                assert!(
                    defined.contains(&k.as_str()),
                    "{template}: {k} used but not defined"
                );
            }
            if let Some(m) = mandatory {
                assert!(keys.iter().any(|k| k == m), "{template}: {state} lacks {m}");
            }
        }
        for state in ["On Hook", "Off Hook", "Connected", "Ring In", "On Hold"] {
            assert!(
                p.sets.iter().any(|(s, _)| s == state),
                "{template}: no {state}"
            );
        }
    }
}

#[test]
fn the_feature_template_adds_park_and_pickup() {
    let std = parse(&cnf::render_softkeys("Standard User").bytes);
    let feat = parse(&cnf::render_softkeys("Standard Feature").bytes);
    let has = |p: &Parsed, state: &str, key: &str| {
        p.sets
            .iter()
            .any(|(s, ks)| s == state && ks.iter().any(|k| k == key))
    };
    assert!(has(&feat, "Connected", "Park") && !has(&std, "Connected", "Park"));
    assert!(has(&feat, "On Hook", "PickUp") && !has(&std, "On Hook", "PickUp"));
}
