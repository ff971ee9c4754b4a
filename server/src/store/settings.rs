//! The Questura's settings (`settings`: one row) and the server's own identity
//! (`server_identity`: the key that signs the server's tickets and salts the ready index).

use coper_shared::{
    holidays::{HolidayCalendar, PatronSaint},
    jiff::{Timestamp, civil::Time, tz::TimeZone},
    ready_index::Stretch,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, audit::audit_from, instant_text};

/// The Questura: who it is and the calendar it lives by.
#[derive(Debug, Clone)]
pub struct Questura {
    pub name: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub time_zone: TimeZone,
    pub holidays: HolidayCalendar,
}

/// The Questura's settings, or `None` on a database nobody has set up yet.
pub fn questura(conn: &Connection) -> Result<Option<Questura>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT questura_name, address, phone, email, time_zone,
                    patron_month, patron_day, patron_name
             FROM settings WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i8>>(5)?,
                r.get::<_, Option<i8>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })
        .optional()?;
    let Some((name, address, phone, email, zone, month, day, patron_name)) = row else {
        return Ok(None);
    };
    let time_zone = TimeZone::get(&zone)
        .map_err(|e| StoreError::InvalidData(format!("time zone {zone:?}: {e}")))?;
    let patron = match (month, day) {
        (Some(month), Some(day)) => Some(PatronSaint {
            month,
            day,
            name: patron_name.unwrap_or_else(|| "Santo patrono".into()),
        }),
        _ => None,
    };
    Ok(Some(Questura {
        name,
        address,
        phone,
        email,
        time_zone,
        holidays: HolidayCalendar::new(patron),
    }))
}

/// The Questura's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub questura_name: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub patron: Option<(i8, i8, String)>,
    pub checkin_early_minutes: i64,
    pub checkin_late_minutes: i64,
    /// A kiosk silent for longer is flagged on its partner body's page.
    pub kiosk_silent_minutes: i64,
    pub messaging: Messaging,
}

/// When the messages to people go out, and how long their contacts are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Messaging {
    /// Days a booking's phone and e-mail are kept after it ends (delivered, cancelled, no-show).
    pub contact_retention_days: i64,
    /// The reminder goes out this many days before the appointment (0: none)…
    pub reminder_days_before: i64,
    /// …at this local time.
    pub reminder_at: Time,
    /// No message leaves between these local times (they may wrap midnight).
    pub quiet_from: Time,
    pub quiet_until: Time,
}

impl Default for Messaging {
    fn default() -> Self {
        Self {
            contact_retention_days: 30,
            reminder_days_before: 2,
            reminder_at: Time::constant(10, 0, 0, 0),
            quiet_from: Time::constant(20, 0, 0, 0),
            quiet_until: Time::constant(8, 0, 0, 0),
        }
    }
}

pub fn settings(conn: &Connection) -> Result<Option<Settings>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT questura_name, address, phone, email, patron_month, patron_day, patron_name,
                    checkin_early_minutes, checkin_late_minutes, kiosk_silent_minutes,
                    contact_retention_days, reminder_days_before, reminder_at, quiet_from,
                    quiet_until
             FROM settings WHERE id = 1",
        )?
        .query_row([], |r| {
            let month: Option<i8> = r.get(4)?;
            let day: Option<i8> = r.get(5)?;
            let name: Option<String> = r.get(6)?;
            Ok(Settings {
                questura_name: r.get(0)?,
                address: r.get(1)?,
                phone: r.get(2)?,
                email: r.get(3)?,
                patron: month
                    .zip(day)
                    .map(|(m, d)| (m, d, name.unwrap_or_default())),
                checkin_early_minutes: r.get(7)?,
                checkin_late_minutes: r.get(8)?,
                kiosk_silent_minutes: r.get(9)?,
                messaging: Messaging {
                    contact_retention_days: r.get(10)?,
                    reminder_days_before: r.get(11)?,
                    reminder_at: stored_time(r.get(12)?, 10),
                    quiet_from: stored_time(r.get(13)?, 20),
                    quiet_until: stored_time(r.get(14)?, 8),
                },
            })
        })
        .optional()?)
}

/// Create or replace the settings (the first save sets a fresh install up).
pub fn save_settings(
    conn: &Connection,
    s: &Settings,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<(), StoreError> {
    let (month, day, patron) = match &s.patron {
        Some((m, d, n)) => (Some(*m), Some(*d), Some(n.clone())),
        None => (None, None, None),
    };
    conn.prepare_cached(
        "INSERT INTO settings (id, questura_name, address, phone, email, patron_month, patron_day,
             patron_name, checkin_early_minutes, checkin_late_minutes, kiosk_silent_minutes,
             contact_retention_days, reminder_days_before, reminder_at, quiet_from, quiet_until)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (id) DO UPDATE SET questura_name = ?1, address = ?2, phone = ?3, email = ?4,
             patron_month = ?5, patron_day = ?6, patron_name = ?7, checkin_early_minutes = ?8,
             checkin_late_minutes = ?9, kiosk_silent_minutes = ?10, contact_retention_days = ?11,
             reminder_days_before = ?12, reminder_at = ?13, quiet_from = ?14, quiet_until = ?15",
    )?
    .execute(params![
        s.questura_name,
        s.address,
        s.phone,
        s.email,
        month,
        day,
        patron,
        s.checkin_early_minutes,
        s.checkin_late_minutes,
        s.kiosk_silent_minutes,
        s.messaging.contact_retention_days,
        s.messaging.reminder_days_before,
        hh_mm(s.messaging.reminder_at),
        hh_mm(s.messaging.quiet_from),
        hh_mm(s.messaging.quiet_until),
    ])?;
    audit_from(
        conn,
        now,
        actor,
        "settings.saved",
        "",
        &serde_json::json!({}),
        source,
    )?;
    Ok(())
}

/// The server's own signing key, made on first use.
pub fn server_key(conn: &Connection, now: Timestamp) -> Result<[u8; 32], StoreError> {
    let existing: Option<Vec<u8>> = conn
        .prepare_cached("SELECT secret_key FROM server_identity WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if let Some(key) = existing {
        return key
            .try_into()
            .map_err(|_| StoreError::InvalidData("server key".into()));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the OS has randomness");
    conn.prepare_cached(
        "INSERT INTO server_identity (id, secret_key, created_at) VALUES (1, ?1, ?2)",
    )?
    .execute(params![key.to_vec(), instant_text(now)])?;
    Ok(key)
}

/// The secret that opens what kiosks seal for the server (`coper_shared::sealed`), made once.
pub fn seal_secret(conn: &Connection, now: Timestamp) -> Result<[u8; 32], StoreError> {
    server_secret(conn, "outbox_seal", now)
}

/// How the ready list's birth dates are stretched: the list-wide salt (made once) and the cost.
pub fn ready_stretch(conn: &Connection, now: Timestamp) -> Result<Stretch, StoreError> {
    let salt = hex::encode(&server_secret(conn, "ready_stretch_salt", now)?[..16]);
    let (memory_kib, passes) = conn
        .prepare_cached(
            "SELECT ready_stretch_kib, ready_stretch_passes FROM settings WHERE id = 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((Stretch::MEMORY_KIB, Stretch::PASSES));
    Ok(Stretch {
        salt,
        memory_kib,
        passes,
    })
}

/// Set the ready list's stretching cost (the demo uses a cheap one: its data are synthetic).
pub fn set_ready_stretch(
    conn: &Connection,
    memory_kib: u32,
    passes: u32,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE settings SET ready_stretch_kib = ?1, ready_stretch_passes = ?2 WHERE id = 1",
    )?
    .execute(params![memory_kib, passes])?;
    Ok(())
}

/// The key of the opt-out list's hashes (`notice_opt_outs`).
pub fn opt_out_key(conn: &Connection, now: Timestamp) -> Result<[u8; 32], StoreError> {
    server_secret(conn, "opt_out_key", now)
}

/// The server secret called `name`, made the first time it is asked for.
fn server_secret(conn: &Connection, name: &str, now: Timestamp) -> Result<[u8; 32], StoreError> {
    let existing: Option<Vec<u8>> = conn
        .prepare_cached("SELECT secret FROM server_secrets WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    if let Some(secret) = existing {
        return secret
            .try_into()
            .map_err(|_| StoreError::InvalidData(format!("server secret {name}")));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the OS has randomness");
    conn.prepare_cached(
        "INSERT INTO server_secrets (name, secret, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![name, secret.to_vec(), instant_text(now)])?;
    Ok(secret)
}

/// When messages go out and how long contacts are kept: the defaults before any setup.
pub fn messaging(conn: &Connection) -> Result<Messaging, StoreError> {
    Ok(settings(conn)?.map(|s| s.messaging).unwrap_or_default())
}

fn stored_time(text: String, default_hour: i8) -> Time {
    super::parse_time(&text).unwrap_or(Time::constant(default_hour, 0, 0, 0))
}

fn hh_mm(time: Time) -> String {
    time.strftime("%H:%M").to_string()
}

/// The check-in window: minutes before and after a slot's start.
pub fn checkin_window(conn: &Connection) -> Result<(i64, i64), StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT checkin_early_minutes, checkin_late_minutes FROM settings WHERE id = 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((60, 90)))
}

/// Record that the demonstration data were seeded.
pub fn mark_demo_seeded(conn: &Connection, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE settings SET demo_seeded_at = ?1 WHERE id = 1")?
        .execute([instant_text(now)])?;
    Ok(())
}
