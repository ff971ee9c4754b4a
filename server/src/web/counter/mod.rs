//! The counter's pages (roles counter and admin): `checkin` (scan or look up, the verdict, the
//! clerk's steps), `day` (the live day view and the end-of-day no-shows) and `day_list` (the
//! list to print, in HTML and as a PDF made by `pdf`).

pub mod checkin;
pub mod day;
pub mod day_list;
pub mod pdf;
