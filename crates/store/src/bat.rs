//! CUCM BAT-style CSV: `MAC ADDRESS, DESCRIPTION, DEVICE TYPE, DEVICE PROTOCOL, DEVICE POOL,
//! USER ID, DIRECTORY NUMBER n, DISPLAY n, LINE TEXT LABEL n, SPEED DIAL NUMBER n,
//! SPEED DIAL LABEL n`.
//!
//! Headers are matched case-insensitively, with one or two spaces before the index (BAT
//! exports write two). Columns phoneboot does not model are ignored and reported.
//! phoneboot adds `SIP AUTH USER n` / `SIP AUTH PASSWORD n`, written only on request
//! (`with_secrets`), so that an export can be re-imported into an identical database.

use std::collections::HashMap;
use std::io::{Read, Write};

use crate::error::StoreError;
use crate::model::*;
use crate::{validate, ImportRow};

/// The parsed file: the rows to import and the header names that were ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedCsv {
    pub rows: Vec<ImportRow>,
    pub ignored_columns: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Col {
    Mac,
    Description,
    DeviceType,
    Protocol,
    Pool,
    UserId,
    Dn(usize),
    Display(usize),
    Label(usize),
    SdNumber(usize),
    SdLabel(usize),
    AuthUser(usize),
    AuthPassword(usize),
}

/// Upper-cases, trims and collapses runs of spaces: `directory number  1` -> `DIRECTORY NUMBER 1`.
fn normalise_header(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

fn classify(h: &str) -> Option<Col> {
    let n = normalise_header(h);
    let fixed = match n.as_str() {
        "MAC ADDRESS" => Some(Col::Mac),
        "DESCRIPTION" => Some(Col::Description),
        "DEVICE TYPE" => Some(Col::DeviceType),
        "DEVICE PROTOCOL" => Some(Col::Protocol),
        "DEVICE POOL" => Some(Col::Pool),
        "USER ID" | "OWNER USER ID" => Some(Col::UserId),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let (stem, idx) = n.rsplit_once(' ')?;
    let idx: usize = idx.parse().ok().filter(|i| (1..=99).contains(i))?;
    Some(match stem {
        "DIRECTORY NUMBER" => Col::Dn(idx),
        "DISPLAY" => Col::Display(idx),
        "LINE TEXT LABEL" => Col::Label(idx),
        "SPEED DIAL NUMBER" => Col::SdNumber(idx),
        "SPEED DIAL LABEL" => Col::SdLabel(idx),
        "SIP AUTH USER" => Col::AuthUser(idx),
        "SIP AUTH PASSWORD" => Col::AuthPassword(idx),
        _ => return None,
    })
}

/// Parses a BAT CSV. Every cell is checked here with its column name, so an error says
/// `row 7: DIRECTORY NUMBER 2: expected ..., found "12a"`. Nothing touches the database.
pub fn parse(input: impl Read) -> Result<ParsedCsv, StoreError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = rdr
        .headers()
        .map_err(|e| StoreError::Csv(format!("header: {e}")))?
        .clone();
    let mut cols: Vec<Option<Col>> = Vec::with_capacity(headers.len());
    let mut ignored = Vec::new();
    let mut seen: HashMap<Col, String> = HashMap::new();
    for h in headers.iter() {
        let c = classify(h);
        match c {
            Some(c) => {
                if let Some(prev) = seen.insert(c, h.to_string()) {
                    return Err(StoreError::invalid(
                        format!("header {h:?}"),
                        format!("each column once (same as {prev:?})"),
                        h,
                    )
                    .at_row(1));
                }
            }
            None => ignored.push(h.to_string()),
        }
        cols.push(c);
    }
    for (required, name) in [(Col::Mac, "MAC ADDRESS"), (Col::DeviceType, "DEVICE TYPE")] {
        if !seen.contains_key(&required) {
            return Err(StoreError::invalid(
                "header",
                format!("a {name} column"),
                headers.iter().collect::<Vec<_>>().join(","),
            )
            .at_row(1));
        }
    }
    let lay = Layout::new(&cols, &headers);
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 2;
        let rec = rec.map_err(|e| {
            StoreError::Csv(format!(
                "row {row}: {e} (expected one field per header column)"
            ))
        })?;
        if rec.iter().all(|f| f.is_empty()) {
            return Err(StoreError::invalid(
                "row",
                "no blank lines (BAT rule: one record per line)",
                "",
            )
            .at_row(row));
        }
        rows.push(parse_record(&rec, &lay, row).map_err(|e| e.at_row(row))?);
    }
    Ok(ParsedCsv {
        rows,
        ignored_columns: ignored,
    })
}

/// Column positions, computed once per file.
struct Layout {
    idx: HashMap<Col, usize>,
    names: Vec<String>,
    lines: Vec<usize>,
    speed_dials: Vec<usize>,
}

impl Layout {
    fn new(cols: &[Option<Col>], headers: &csv::StringRecord) -> Self {
        let mut idx = HashMap::new();
        let mut lines = std::collections::BTreeSet::new();
        let mut speed_dials = std::collections::BTreeSet::new();
        for (j, c) in cols.iter().enumerate() {
            if let Some(c) = c {
                idx.insert(*c, j);
                match c {
                    Col::Dn(n)
                    | Col::Display(n)
                    | Col::Label(n)
                    | Col::AuthUser(n)
                    | Col::AuthPassword(n) => {
                        lines.insert(*n);
                    }
                    Col::SdNumber(n) | Col::SdLabel(n) => {
                        speed_dials.insert(*n);
                    }
                    _ => {}
                }
            }
        }
        Layout {
            idx,
            names: headers.iter().map(normalise_header).collect(),
            lines: lines.into_iter().collect(),
            speed_dials: speed_dials.into_iter().collect(),
        }
    }

    fn get<'r>(&self, rec: &'r csv::StringRecord, c: Col) -> &'r str {
        self.idx.get(&c).and_then(|&j| rec.get(j)).unwrap_or("")
    }

    /// The header as written (normalised), or the canonical name when the column is absent.
    fn hdr(&self, c: Col, default: impl FnOnce() -> String) -> std::borrow::Cow<'_, str> {
        match self.idx.get(&c).and_then(|&j| self.names.get(j)) {
            Some(n) => std::borrow::Cow::Borrowed(n.as_str()),
            None => std::borrow::Cow::Owned(default()),
        }
    }
}

fn parse_record(
    rec: &csv::StringRecord,
    lay: &Layout,
    row: usize,
) -> Result<ImportRow, StoreError> {
    let get = |c: Col| lay.get(rec, c);
    let mac = get(Col::Mac);
    let (name, _) = validate::device_name(&lay.hdr(Col::Mac, || "MAC ADDRESS".into()), mac)?;
    let model_s = get(Col::DeviceType);
    let protocol = match get(Col::Protocol) {
        "" => {
            // BAT files without a protocol column: SCCP where the model has it, else SIP.
            match cnf::lookup(model_s) {
                Some(m) if !m.sccp => Protocol::Sip,
                _ => Protocol::Sccp,
            }
        }
        p => p.parse().map_err(|_| {
            StoreError::invalid(
                lay.hdr(Col::Protocol, || "DEVICE PROTOCOL".into()),
                "SCCP or SIP",
                p,
            )
        })?,
    };
    let m = validate::model(
        &lay.hdr(Col::DeviceType, || "DEVICE TYPE".into()),
        model_s,
        protocol,
    )?;
    let mut d = NewDevice::new(&name, m.name, protocol);
    d.description = get(Col::Description).to_string();
    validate::text(
        &lay.hdr(Col::Description, || "DESCRIPTION".into()),
        &d.description,
        128,
    )?;
    if !get(Col::Pool).is_empty() {
        d.device_pool = get(Col::Pool).to_string();
    }
    d.owner = get(Col::UserId).to_string();

    // Lines and speed dials by index; gaps are allowed in the file, order is kept.
    let mut auth = Vec::new();
    for &n in &lay.lines {
        let dn = get(Col::Dn(n));
        let display = get(Col::Display(n));
        let label = get(Col::Label(n));
        let (au, ap) = (get(Col::AuthUser(n)), get(Col::AuthPassword(n)));
        let dn_field = lay.hdr(Col::Dn(n), || format!("DIRECTORY NUMBER {n}"));
        if dn.is_empty() {
            if !display.is_empty() || !label.is_empty() {
                return Err(StoreError::invalid(
                    dn_field,
                    "a directory number when DISPLAY/LINE TEXT LABEL is given",
                    "",
                ));
            }
            continue;
        }
        validate::dn(&dn_field, dn)?;
        validate::display_name(
            &lay.hdr(Col::Display(n), || format!("DISPLAY {n}")),
            display,
        )?;
        validate::line_label(
            &lay.hdr(Col::Label(n), || format!("LINE TEXT LABEL {n}")),
            label,
        )?;
        validate::auth_name(
            &lay.hdr(Col::AuthUser(n), || format!("SIP AUTH USER {n}")),
            au,
        )?;
        validate::auth_password(
            &lay.hdr(Col::AuthPassword(n), || format!("SIP AUTH PASSWORD {n}")),
            ap,
        )?;
        d.lines.push(LineAppearance {
            dn: dn.to_string(),
            label: label.to_string(),
            display: display.to_string(),
        });
        let has_auth =
            lay.idx.contains_key(&Col::AuthUser(n)) || lay.idx.contains_key(&Col::AuthPassword(n));
        auth.push(has_auth.then(|| (au.to_string(), ap.to_string())));
    }
    for &n in &lay.speed_dials {
        let number = get(Col::SdNumber(n));
        let label = get(Col::SdLabel(n));
        let field = lay.hdr(Col::SdNumber(n), || format!("SPEED DIAL NUMBER {n}"));
        if number.is_empty() {
            if !label.is_empty() {
                return Err(StoreError::invalid(
                    field,
                    "a number when SPEED DIAL LABEL is given",
                    "",
                ));
            }
            continue;
        }
        validate::speed_dial_number(&field, number)?;
        validate::text(
            &lay.hdr(Col::SdLabel(n), || format!("SPEED DIAL LABEL {n}")),
            label,
            30,
        )?;
        d.speed_dials.push(SpeedDial {
            number: number.to_string(),
            label: label.to_string(),
        });
    }
    Ok(ImportRow {
        row,
        device: d,
        auth,
    })
}

/// Writes every device as one BAT row (devices sorted by name; label/display are the
/// effective values the phone shows). With `with_secrets`, SIP credentials are included.
pub fn export(
    devices: &[Device],
    lines: &[Line],
    with_secrets: bool,
    out: impl Write,
) -> Result<(), StoreError> {
    let by_dn: HashMap<&str, &Line> = lines.iter().map(|l| (l.dn.as_str(), l)).collect();
    let max_lines = devices
        .iter()
        .map(|d| d.lines.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let max_sd = devices
        .iter()
        .map(|d| d.speed_dials.len())
        .max()
        .unwrap_or(0);
    let mut header: Vec<String> = [
        "MAC ADDRESS",
        "DESCRIPTION",
        "DEVICE TYPE",
        "DEVICE PROTOCOL",
        "DEVICE POOL",
        "USER ID",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in 1..=max_lines {
        header.push(format!("DIRECTORY NUMBER {n}"));
        header.push(format!("DISPLAY {n}"));
        header.push(format!("LINE TEXT LABEL {n}"));
        if with_secrets {
            header.push(format!("SIP AUTH USER {n}"));
            header.push(format!("SIP AUTH PASSWORD {n}"));
        }
    }
    for n in 1..=max_sd {
        header.push(format!("SPEED DIAL NUMBER {n}"));
        header.push(format!("SPEED DIAL LABEL {n}"));
    }
    let mut w = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| StoreError::Csv(e.to_string());
    w.write_record(&header).map_err(csv_err)?;
    let mut sorted: Vec<&Device> = devices.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for d in sorted {
        let bare = d.mac.to_bare_upper();
        let mut rec: Vec<String> = vec![
            bare,
            d.description.clone(),
            d.model.clone(),
            d.protocol.as_str().to_string(),
            d.device_pool.clone(),
            d.owner.clone(),
        ];
        for n in 0..max_lines {
            match d.lines.get(n) {
                Some(app) => {
                    let line = by_dn.get(app.dn.as_str());
                    let label = if app.label.is_empty() {
                        line.map(|l| l.label.as_str()).unwrap_or("")
                    } else {
                        &app.label
                    };
                    let display = if app.display.is_empty() {
                        line.map(|l| l.display_name.as_str()).unwrap_or("")
                    } else {
                        &app.display
                    };
                    rec.push(app.dn.clone());
                    rec.push(display.to_string());
                    rec.push(label.to_string());
                    if with_secrets {
                        rec.push(line.map(|l| l.auth_user.clone()).unwrap_or_default());
                        rec.push(line.map(|l| l.auth_password.clone()).unwrap_or_default());
                    }
                }
                None => {
                    let k = if with_secrets { 5 } else { 3 };
                    rec.extend(std::iter::repeat_n(String::new(), k));
                }
            }
        }
        for n in 0..max_sd {
            match d.speed_dials.get(n) {
                Some(s) => {
                    rec.push(s.number.clone());
                    rec.push(s.label.clone());
                }
                None => rec.extend([String::new(), String::new()]),
            }
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    w.flush().map_err(|e| StoreError::Csv(e.to_string()))?;
    Ok(())
}
