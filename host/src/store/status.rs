//! Statuses as typed columns: each status enum of `crate::acme` is stored as its RFC 8555 name
//! in a text column, on every backend, and a row holding any other text fails to load with an
//! error that names it rather than turning into some status.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

use crate::acme::{AccountStatus, AuthzStatus, CertificateStatus, ChallengeStatus, OrderStatus};

macro_rules! text_column {
    ($($status:ty),* $(,)?) => {$(
        impl<DB: Backend> ToSql<Text, DB> for $status
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $status
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                Ok(String::from_sql(bytes)?.parse()?)
            }
        }
    )*};
}

text_column!(
    AccountStatus,
    OrderStatus,
    AuthzStatus,
    ChallengeStatus,
    CertificateStatus
);
