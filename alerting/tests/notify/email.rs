//! Email tests against the in-test SMTP server: the dialogue, the headers, dot-stuffing, AUTH PLAIN and
//! LOGIN, STARTTLS and implicit TLS, and 4xx/5xx replies.

use std::time::Duration;

use probenet_alerting::notify::{EmailNotifier, EmailOptions, SmtpTls};
use probenet_alerting::{DeliveryError, Notifier};

use super::common::{refused_port, sample};
use super::smtp_server::{Behaviour, CA_PEM, SmtpServer};

const PASSWORD: &str = "smtp-password-5e9b";

fn options(server: &SmtpServer, tls: SmtpTls) -> EmailOptions {
    EmailOptions {
        host: "127.0.0.1".into(),
        port: server.addr.port(),
        tls,
        username: Some("alerts".into()),
        password: Some(PASSWORD.into()),
        from: "probenet <alerts@example.com>".into(),
        to: vec!["ops@example.com".into(), "Web Team <web@example.com>".into()],
        hello_name: Some("probenet.test".into()),
        timeout: Duration::from_secs(5),
        ..EmailOptions::default()
    }
}

fn auth(mechanisms: &[&'static str]) -> Behaviour {
    Behaviour { auth: mechanisms.to_vec(), credentials: Some(("alerts", PASSWORD)), ..Behaviour::default() }
}

#[tokio::test]
async fn plain_smtp_with_auth_plain_sends_a_proper_message() {
    let server = SmtpServer::start(auth(&["PLAIN", "LOGIN"])).await;
    let notifier = EmailNotifier::new(options(&server, SmtpTls::None)).unwrap();
    let mut notification = sample();
    notification.summary = ".homepage is down in 2 of 3 regions".into();
    notification.error = Some("körper . dot".into());
    notifier.deliver(&notification).await.expect("delivered");

    let dialogue = server.dialogue();
    let plain = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("\0alerts\0{PASSWORD}"));
    assert_eq!(
        dialogue,
        [
            "EHLO probenet.test".to_owned(),
            format!("AUTH PLAIN {plain}"),
            "MAIL FROM:<alerts@example.com> BODY=8BITMIME".into(),
            "RCPT TO:<ops@example.com>".into(),
            "RCPT TO:<web@example.com>".into(),
            "DATA".into(),
            "QUIT".into(),
        ]
    );
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    let (head, body) = message.split_once("\r\n\r\n").expect("headers, then a blank line");
    let header = |name: &str| {
        head.split("\r\n")
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {head}"))
            .to_owned()
    };
    assert_eq!(header("Subject"), "[FIRING] site-down: homepage down in eu-west, us-east");
    assert_eq!(header("From"), "probenet <alerts@example.com>");
    assert_eq!(header("To"), "ops@example.com, web@example.com");
    assert_eq!(header("MIME-Version"), "1.0");
    assert_eq!(header("Content-Type"), "text/plain; charset=utf-8");
    assert_eq!(header("Content-Transfer-Encoding"), "8bit");
    assert!(chrono::DateTime::parse_from_rfc2822(&header("Date")).is_ok(), "{}", header("Date"));
    let id = header("Message-ID");
    assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
    // The leading dot of the summary line is doubled on the wire.
    assert!(body.contains("\r\n..homepage is down in 2 of 3 regions\r\n"), "{body}");
    for fact in [
        "Regions:   eu-west, us-east (2 of 3)",
        "Since:     2024-05-01 12:00:00 UTC",
        "Reason:    timeout",
        "Error:     körper . dot",
        "Dashboard: https://dash.example.com/checks/homepage",
    ] {
        assert!(body.contains(fact), "{fact:?} not in {body}");
    }
    assert!(!message.split("\r\n").any(|line| line == "."), "a lone dot would end the data early");
    let debug = format!("{notifier:?} {:?}", options(&server, SmtpTls::None));
    assert!(!debug.contains(PASSWORD), "{debug}");
}

#[tokio::test]
async fn auth_login_is_used_when_plain_is_not_offered_and_bad_credentials_are_refused() {
    let server = SmtpServer::start(auth(&["LOGIN"])).await;
    let notifier = EmailNotifier::new(options(&server, SmtpTls::None)).unwrap();
    notifier.deliver(&sample()).await.expect("delivered");
    let verbs = server.verbs();
    assert_eq!(verbs[..2], ["EHLO".to_owned(), "AUTH".to_owned()]);
    assert_eq!(server.dialogue()[1], "AUTH LOGIN");
    assert_eq!(server.messages().len(), 1);

    let mut wrong = options(&server, SmtpTls::None);
    wrong.password = Some("wrong-password-1234".into());
    let error = EmailNotifier::new(wrong).unwrap().deliver(&sample()).await.unwrap_err();
    assert_eq!(error, DeliveryError::Reject("smtp auth login (password): 535 5.7.8 authentication failed".into()));
    assert!(!error.to_string().contains("wrong-password"));
}

#[tokio::test]
async fn rcpt_replies_4xx_retry_and_5xx_reject() {
    let server = SmtpServer::start(Behaviour { rcpt_reply: Some("550 5.1.1 no such user"), ..auth(&["PLAIN"]) }).await;
    let error = EmailNotifier::new(options(&server, SmtpTls::None)).unwrap().deliver(&sample()).await.unwrap_err();
    assert_eq!(error, DeliveryError::Reject("smtp rcpt to: 550 5.1.1 no such user".into()));
    assert!(server.messages().is_empty());

    let server =
        SmtpServer::start(Behaviour { rcpt_reply: Some("451 4.3.0 try again later"), ..auth(&["PLAIN"]) }).await;
    let error = EmailNotifier::new(options(&server, SmtpTls::None)).unwrap().deliver(&sample()).await.unwrap_err();
    assert_eq!(error, DeliveryError::Retry("smtp rcpt to: 451 4.3.0 try again later".into()));

    let mut gone = options(&server, SmtpTls::None);
    gone.port = refused_port();
    let error = EmailNotifier::new(gone).unwrap().deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Retry(message) if message.starts_with("smtp connect:")), "{error:?}");
}

#[tokio::test]
async fn starttls_upgrades_before_credentials_and_checks_the_certificate() {
    let server = SmtpServer::start(Behaviour { starttls: true, ..auth(&["PLAIN"]) }).await;
    let mut trusted = options(&server, SmtpTls::StartTls);
    trusted.ca_file = Some(CA_PEM.into());
    EmailNotifier::new(trusted.clone()).unwrap().deliver(&sample()).await.expect("delivered over STARTTLS");
    assert_eq!(server.verbs(), ["EHLO", "STARTTLS", "[TLS]", "EHLO", "AUTH", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]);
    assert_eq!(server.messages().len(), 1);

    // Without the CA the certificate is not trusted: nothing is sent after the handshake.
    let server = SmtpServer::start(Behaviour { starttls: true, ..auth(&["PLAIN"]) }).await;
    let error = EmailNotifier::new(options(&server, SmtpTls::StartTls)).unwrap().deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Retry(message) if message.contains("certificate")), "{error:?}");
    // The server logs the end of its handshake a moment after the client gave up.
    let verbs =
        super::common::poll(Duration::from_secs(5), || async { (server.verbs().len() >= 3).then(|| server.verbs()) })
            .await
            .unwrap_or_else(|| server.verbs());
    assert_eq!(verbs, ["EHLO", "STARTTLS", "[TLS]"]);

    // A server that does not offer STARTTLS never gets the credentials.
    let server = SmtpServer::start(auth(&["PLAIN"])).await;
    let error = EmailNotifier::new(trusted_for(&server)).unwrap().deliver(&sample()).await.unwrap_err();
    assert_eq!(error, DeliveryError::Reject("smtp: the server does not offer STARTTLS".into()));
    assert_eq!(server.verbs(), ["EHLO"]);
}

fn trusted_for(server: &SmtpServer) -> EmailOptions {
    let mut options = options(server, SmtpTls::StartTls);
    options.ca_file = Some(CA_PEM.into());
    options
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let server = SmtpServer::start(Behaviour { implicit_tls: true, ..auth(&["PLAIN"]) }).await;
    let mut tls = options(&server, SmtpTls::Tls);
    tls.ca_file = Some(CA_PEM.into());
    tls.host = "localhost".into();
    EmailNotifier::new(tls).unwrap().deliver(&sample()).await.expect("delivered over TLS");
    assert_eq!(server.verbs(), ["[TLS]", "EHLO", "AUTH", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]);
}
