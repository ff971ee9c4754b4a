//! Importing the list of ready permits exported from the national system.
//!
//! The file is CSV as Italian spreadsheets write it: `;` or `,` (detected from the header), UTF-8
//! with or without a byte-order mark, dates as `gg/mm/aaaa`. A birth date may be only partly
//! known (`00/00/1980`, `05/1980`, `1980`). Columns are found by their header, in Italian or
//! English. Every row is checked first; if any is wrong, nothing is imported and each error names
//! its line. Importing the same file again changes nothing.

use coper_shared::ready_index::Stretch;

use crate::store::{self, Connection, StoreError, Transaction, ready, settings};
use jiff::civil::Date;

/// One valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyRow {
    pub line: u64,
    pub surname: String,
    pub given_names: String,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: String,
    pub fingerprint_date: Date,
    pub receipt_number: Option<String>,
    pub pratica_number: Option<String>,
    pub drawer: String,
}

/// Birth dates stretched for the ready index ([`coper_shared::ready_index::Stretch`]), made
/// before an import takes the writing connection: each takes tens of milliseconds, and a new
/// list may bring thousands.
#[derive(Debug, Clone, Default)]
pub struct Stretched {
    pub stretch: String,
    pub keys: Vec<(String, String)>,
}

/// The stretch in force and the birth dates among `births` it has no kept key for (reads only).
pub fn births_to_stretch(
    conn: &Connection,
    births: impl IntoIterator<Item = String>,
    now: jiff::Timestamp,
) -> Result<(Stretch, Vec<String>), StoreError> {
    let stretch = settings::ready_stretch(conn, now)?;
    let kept = ready::birth_keys(conn, &stretch.id())?;
    let missing: std::collections::BTreeSet<String> = births
        .into_iter()
        .filter(|b| !kept.contains_key(b))
        .collect();
    Ok((stretch, missing.into_iter().collect()))
}

/// Stretch `births`, on every core: pure computation, no database.
pub fn stretch_births(stretch: &Stretch, births: Vec<String>) -> Stretched {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = births.len().div_ceil(threads).max(1);
    let keys = std::thread::scope(|scope| {
        let workers: Vec<_> = births
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|b| (b.clone(), stretch.key(b)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("stretching does not panic"))
            .collect()
    });
    Stretched {
        stretch: stretch.id(),
        keys,
    }
}

/// A problem with the file, in Italian, with the line it is on (1 is the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "riga {}: {}", self.line, self.message)
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Surname,
    GivenNames,
    BirthDate,
    FingerprintDate,
    Receipt,
    Pratica,
    Drawer,
}

fn column_of(header: &str) -> Option<Column> {
    let key: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    Some(match key.as_str() {
        "cognome" | "cognomi" | "surname" | "surnames" | "lastname" => Column::Surname,
        "nome" | "nomi" | "name" | "givenname" | "givennames" | "firstname" => Column::GivenNames,
        "datadinascita" | "datanascita" | "nascita" | "birthdate" | "dateofbirth" => {
            Column::BirthDate
        }
        "dataimpronte"
        | "datarilievoimpronte"
        | "datarilievi"
        | "impronte"
        | "fingerprintdate"
        | "fingerprintingdate" => Column::FingerprintDate,
        "assicurata" | "numeroassicurata" | "ricevuta" | "receipt" | "receiptnumber" => {
            Column::Receipt
        }
        "pratica" | "numeropratica" | "praticanumber" => Column::Pratica,
        "cassetto" | "collocazione" | "drawer" => Column::Drawer,
        _ => return None,
    })
}

/// The text of a file as the national system or Excel wrote it: UTF-8 when the bytes are valid
/// UTF-8 (with or without BOM), else Windows-1252 (Italian Excel's "CSV"; a superset of
/// ISO-8859-1, and every byte decodes). The name of the encoding found comes with it.
pub fn decode(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, &'static str) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.into(), "UTF-8"),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            (text, "Windows-1252")
        }
    }
}

/// Parse a whole file, in either encoding [`decode`] knows: every valid row, or every error.
pub fn parse(bytes: &[u8]) -> Result<Vec<ReadyRow>, Vec<RowError>> {
    let (text, _) = decode(bytes);
    let bytes = text.as_bytes();
    // Windows line ends (Excel, and every browser's form post) would shift the csv crate's line
    // numbers by one: read them as plain newlines.
    let unix: Vec<u8>;
    let bytes = if bytes.contains(&b'\r') {
        let mut out = Vec::with_capacity(bytes.len());
        let mut iter = bytes.iter().peekable();
        while let Some(&b) = iter.next() {
            if b == b'\r' {
                iter.next_if_eq(&&b'\n');
                out.push(b'\n');
            } else {
                out.push(b);
            }
        }
        unix = out;
        &unix[..]
    } else {
        bytes
    };
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let semicolons = first_line.iter().filter(|b| **b == b';').count();
    let commas = first_line.iter().filter(|b| **b == b',').count();
    let delimiter = if semicolons >= commas { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header_error = |message: String| vec![RowError { line: 1, message }];
    let headers = reader
        .headers()
        .map_err(|e| header_error(format!("intestazione illeggibile: {e}")))?
        .clone();
    let columns: Vec<Option<Column>> = headers.iter().map(column_of).collect();
    for required in [Column::Surname, Column::BirthDate, Column::FingerprintDate] {
        if !columns.contains(&Some(required)) {
            return Err(header_error(format!(
                "manca la colonna «{}» (intestazioni trovate: {})",
                match required {
                    Column::Surname => "cognome",
                    Column::BirthDate => "data di nascita",
                    _ => "data impronte",
                },
                headers.iter().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen_receipts = std::collections::HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RowError {
                    line,
                    message: format!("riga illeggibile: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |wanted: Column| -> String {
            columns
                .iter()
                .position(|c| *c == Some(wanted))
                .and_then(|i| record.get(i))
                .map(collapse)
                .unwrap_or_default()
        };
        let mut fail = |message: String| errors.push(RowError { line, message });
        // A character lost before it reached us (a file read in the wrong encoding and pasted)
        // would be stored as a different person: refuse the row.
        if record.iter().any(|field| field.contains('\u{FFFD}')) {
            fail(
                "carattere illeggibile («\u{FFFD}»): salvare il file come CSV UTF-8 o caricarlo con «File CSV»"
                    .into(),
            );
            continue;
        }
        let row = match check_row(
            line,
            Typed {
                surname: get(Column::Surname),
                given_names: get(Column::GivenNames),
                birth_date: get(Column::BirthDate),
                fingerprint_date: get(Column::FingerprintDate),
                receipt: get(Column::Receipt),
                pratica: get(Column::Pratica),
                drawer: get(Column::Drawer),
            },
        ) {
            Ok(row) => row,
            Err(message) => {
                fail(message);
                continue;
            }
        };
        let receipt = &row.receipt_number;
        if let Some(r) = receipt
            && let Some(first) = seen_receipts.insert(r.clone(), line)
        {
            fail(format!("assicurata «{r}» già presente alla riga {first}"));
            continue;
        }
        rows.push(row);
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// The fields of one permit as typed, in a file's row or in the administration's correction form
/// (spaces already collapsed).
#[derive(Debug, Clone, Default)]
pub struct Typed {
    pub surname: String,
    pub given_names: String,
    /// `gg/mm/aaaa`, with `00` for the parts unknown.
    pub birth_date: String,
    /// `gg/mm/aaaa`.
    pub fingerprint_date: String,
    pub receipt: String,
    pub pratica: String,
    pub drawer: String,
}

/// `text` with its runs of white space as single spaces, and none at either end.
pub fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A stored date (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`) as the files and forms write it:
/// `gg/mm/aaaa`, with `00` for the parts unknown.
pub fn typed_date(stored: &str) -> String {
    let mut parts: Vec<&str> = stored.split('-').collect();
    parts.resize(3, "00");
    format!("{}/{}/{}", parts[2], parts[1], parts[0])
}

/// Check one permit's fields: the row as stored, or why not (Italian: the administrator reads it).
pub fn check_row(line: u64, mut typed: Typed) -> Result<ReadyRow, String> {
    if typed.surname.is_empty() {
        return Err("cognome mancante".into());
    }
    for (what, text, max) in [
        ("cognome", &typed.surname, 100),
        ("nome", &typed.given_names, 100),
        ("cassetto", &typed.drawer, 20),
    ] {
        if text.chars().count() > max {
            return Err(format!("{what} troppo lungo (al massimo {max} caratteri)"));
        }
        if text.chars().any(char::is_control) {
            return Err(format!("{what} con caratteri di controllo"));
        }
    }
    // Numbers as the national system writes them, whatever case was typed.
    typed.receipt = typed.receipt.to_uppercase();
    typed.pratica = typed.pratica.to_uppercase();
    let birth_text = &typed.birth_date;
    let Some(birth_date) = parse_partial_date(birth_text) else {
        return Err(format!(
            "data di nascita non valida «{birth_text}»: usare gg/mm/aaaa (00 per le parti ignote)"
        ));
    };
    let fingerprint_text = &typed.fingerprint_date;
    let Some(fingerprint_date) = parse_date(fingerprint_text) else {
        return Err(format!(
            "data del rilievo impronte non valida «{fingerprint_text}»: usare gg/mm/aaaa"
        ));
    };
    let receipt_number = identifier(typed.receipt, 12, "numero di assicurata")?;
    let pratica_number = identifier(typed.pratica, 10, "numero di pratica")?;
    Ok(ReadyRow {
        line,
        surname: typed.surname,
        given_names: typed.given_names,
        birth_date,
        fingerprint_date,
        receipt_number,
        pratica_number,
        drawer: typed.drawer,
    })
}

/// An optional identifier of a fixed length: `None` when empty, an Italian message when wrong.
fn identifier(text: String, length: usize, what: &str) -> Result<Option<String>, String> {
    match text.chars().count() {
        0 => Ok(None),
        n if n == length => Ok(Some(text)),
        _ => Err(format!("il {what} «{text}» deve avere {length} caratteri")),
    }
}

/// `gg/mm/aaaa` (also with `-` or `.`).
fn parse_date(text: &str) -> Option<Date> {
    let parts: Vec<&str> = text.split(['/', '-', '.']).collect();
    let [d, m, y] = parts.as_slice() else {
        return None;
    };
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()
}

/// A birth date that may be only partly known: `gg/mm/aaaa`, `00/mm/aaaa`, `00/00/aaaa`,
/// `mm/aaaa` or `aaaa`. Returns `YYYY[-MM[-DD]]`.
fn parse_partial_date(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split(['/', '-', '.']).collect();
    let (day, month, year): (u8, u8, i16) = match parts.as_slice() {
        [d, m, y] => (d.parse().ok()?, m.parse().ok()?, y.parse().ok()?),
        [m, y] => (0, m.parse().ok()?, y.parse().ok()?),
        [y] => (0, 0, y.parse().ok()?),
        _ => return None,
    };
    if !(1900..=2100).contains(&year) {
        return None;
    }
    match (day, month) {
        (0, 0) => Some(format!("{year:04}")),
        (0, m) if (1..=12).contains(&m) => Some(format!("{year:04}-{m:02}")),
        (d, m) => Date::new(year, m as i8, d as i8)
            .ok()
            .map(|date| date.to_string()),
    }
}

/// A row as the store keeps it.
/// The permit a checked row stores.
pub fn permit_of(row: &ReadyRow) -> ready::Permit {
    ready::Permit {
        surname: row.surname.clone(),
        given_names: row.given_names.clone(),
        birth_date: row.birth_date.clone(),
        fingerprint_date: row.fingerprint_date.to_string(),
        receipt_number: row.receipt_number.clone(),
        pratica_number: row.pratica_number.clone(),
        drawer: row.drawer.clone(),
    }
}

/// Import `rows` in one transaction: new permits are added, known ones (same receipt, else same
/// pratica, else same person and dates) updated where they differ.
pub fn apply(
    conn: &mut Connection,
    rows: &[ReadyRow],
    now: jiff::Timestamp,
    actor: &str,
) -> Result<ImportReport, StoreError> {
    let tx = conn.transaction()?;
    let report = apply_in(&tx, rows, now, actor)?;
    tx.commit()?;
    Ok(report)
}

/// What [`apply`] would do, without doing it: for the import page's preview.
pub fn dry_run(
    conn: &mut Connection,
    rows: &[ReadyRow],
    now: jiff::Timestamp,
) -> Result<ImportReport, StoreError> {
    let tx = conn.transaction()?;
    let report = apply_in(&tx, rows, now, "preview")?;
    tx.rollback()?;
    Ok(report)
}

fn apply_in(
    tx: &Transaction<'_>,
    rows: &[ReadyRow],
    now: jiff::Timestamp,
    actor: &str,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    for row in rows {
        let incoming = permit_of(row);
        match ready::find(tx, &incoming)? {
            None => {
                ready::insert(tx, &incoming, now)?;
                report.added += 1;
            }
            Some((_, stored)) if stored == incoming => report.unchanged += 1,
            Some((id, _)) => {
                ready::update(tx, id, &incoming, now)?;
                report.updated += 1;
            }
        }
    }
    // Who asked to be told when their permit is ready hears it now (a preview rolls it back).
    crate::status::fire_watches(tx, now)?;
    crate::store::precheck::link_new_permits(tx)?;
    store::audit_from(
        tx,
        now,
        actor,
        "ready_permits.imported",
        "",
        &serde_json::json!({
            "added": report.added, "updated": report.updated, "unchanged": report.unchanged,
        }),
        "",
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Italian Excel writes for "CSV": `;`, Windows-1252. The same people saved as UTF-8
    /// parse to the same rows, so importing both adds nobody twice.
    #[test]
    fn a_windows_1252_file_from_excel_reads_as_its_utf8_twin() {
        let utf8 = "cognome;nome;data di nascita;data impronte\nFernández López;José;01/02/1980;03/10/2026\nTraoré;Aïssata;1976;03/10/2026\n";
        let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(utf8);
        assert!(!unmappable);
        assert!(
            std::str::from_utf8(&cp1252).is_err(),
            "the bytes Excel writes"
        );
        assert_eq!(decode(&cp1252).1, "Windows-1252");
        assert_eq!(decode(utf8.as_bytes()).1, "UTF-8");
        let from_excel = parse(&cp1252).unwrap();
        assert_eq!(from_excel, parse(utf8.as_bytes()).unwrap());
        assert_eq!(from_excel[0].surname, "Fernández López");
        assert_eq!(from_excel[1].given_names, "Aïssata");
    }

    #[test]
    fn a_character_lost_before_the_import_is_refused() {
        let errors = parse("cognome;nome;data di nascita;data impronte\nFern\u{FFFD}ndez;Jos\u{FFFD};01/02/1980;03/10/2026\n".as_bytes()).unwrap_err();
        assert!(errors[0].message.contains("illeggibile"), "{errors:?}");
    }

    #[test]
    fn a_semicolon_file_with_a_bom_and_italian_headers_parses() {
        let file = "\u{feff}Cognome;Nome;Data di nascita;Data impronte;Assicurata;Pratica;Cassetto\n\
                    D'Souza;Ana-Maria;07/03/1990;15/09/2026;991234567890;9912345678;C3\n\
                    El Amrani;Mohamed  Amine;00/00/1985;01/10/2026;;;\n\
                    Nguyễn;Thi Lan;05/1979;02/10/2026;;;\n";
        let rows = parse(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].birth_date, "1990-03-07");
        assert_eq!(rows[0].receipt_number.as_deref(), Some("991234567890"));
        assert_eq!(rows[1].given_names, "Mohamed Amine");
        assert_eq!(rows[1].birth_date, "1985");
        assert_eq!(rows[2].birth_date, "1979-05");
        assert_eq!(rows[2].line, 4);
    }

    #[test]
    fn a_comma_file_with_english_headers_parses() {
        let file =
            "surname,name,birth date,fingerprint date\nPopescu,Ioana,31/12/2000,03/11/2026\n";
        let rows = parse(file.as_bytes()).unwrap();
        assert_eq!(rows[0].fingerprint_date, jiff::civil::date(2026, 11, 3));
    }

    #[test]
    fn windows_line_ends_keep_the_line_numbers() {
        let file = "Cognome;Nome;Data di nascita;Data impronte\r\n\
                    Rossi;Ana;01/02/1990;10/11/2026\r\n\
                    Bianchi;Eva;31/02/1990;10/11/2026\r\n";
        let errors = parse(file.as_bytes()).unwrap_err();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let file = "cognome;nome;data di nascita;data impronte;assicurata\n\
                    Rossi;Ana;31/02/1990;01/10/2026;\n\
                    ;Ana;01/02/1990;01/10/2026;\n\
                    Bianchi;Luca;01/02/1990;2026-10-01x;\n\
                    Verdi;Gio;01/02/1990;01/10/2026;123\n\
                    Neri;Ada;01/02/1990;01/10/2026;991234567890\n\
                    Blu;Ada;01/02/1990;01/10/2026;991234567890\n";
        let errors = parse(file.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 7], "{errors:?}");
        assert!(
            errors[0]
                .to_string()
                .starts_with("riga 2: data di nascita non valida")
        );
        assert!(errors[4].message.contains("riga 6"));
    }

    #[test]
    fn a_missing_column_is_named() {
        let errors = parse(b"cognome;nome\nRossi;Ana\n").unwrap_err();
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("data di nascita"), "{errors:?}");
    }
}
