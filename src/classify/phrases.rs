//! Phrase families: what MTAs write for each reason, in English and
//! Japanese, each family compiled once (byte regexes, ASCII case folding).
//!
//! The table is ordered by trust: when a diagnostic matches several
//! families, the earliest family wins. Specific conditions (a full mailbox,
//! an oversized message, a disabled account) come before "the address does
//! not exist", so that a 550 "can't create output" behind a quota message
//! reads as a full mailbox, and "does not exist" comes before the generic
//! policy and system families.
//!
//! Adding a phrase is one line in [`FAMILIES`]; the tests below pin one
//! example per family.

use super::Reason;
// Byte-oriented sets with Unicode classes off: `\S` and `.` stay one byte
// wide, so the lazy DFA stays small and fast; case folding is ASCII only,
// which is all the English phrases need (the Japanese ones are literal).
use regex::bytes::{RegexSet, RegexSetBuilder};
use std::sync::LazyLock;

/// `(reason, pattern)` in priority order. Patterns are case-insensitive and
/// run over unfolded diagnostic text.
pub const FAMILIES: &[(Reason, &str)] = &[
    // --- A full mailbox (the address is fine) ---------------------------
    (
        Reason::MailboxFull,
        r"mail ?box (?:is |was |has become )?(?:full|overfull)",
    ),
    (
        Reason::MailboxFull,
        r"(?:mail ?box|mail ?folder|inbox|account|user|recipient)(?:'s)? (?:\S+ ){0,3}(?:is |was )?(?:over|exceed(?:s|ed|ing)?) (?:the |its |his |her |their )?(?:storage |disk |mailbox |local )?(?:quota|allocation|limit|size limit|(?:allowed |maximum )?size)",
    ),
    (
        Reason::MailboxFull,
        r"over ?quota|quota (?:exceeded|exceed|full|violation)|exceeded (?:storage|the storage|(?:his|her|its|their|the|mailbox|disk) quota)|disk quota|mail ?quota|storage quota",
    ),
    (
        Reason::MailboxFull,
        r"(?:inbox|mailbox|mail box) (?:size |storage )?(?:is )?(?:full|limit (?:exceeded|reached))|full mailbox|mailbox size limit|maildir over|insufficient (?:disk )?space (?:in|for) (?:the )?(?:mailbox|user)|not enough disk space|exhausted (?:allowed )?storage|not enough (?:storage|space) (?:in|on) (?:the )?(?:mailbox|account)|too much mail data|user's storage (?:is )?full|local user inbox full",
    ),
    (
        Reason::MailboxFull,
        r"does not have enough space|space has been used up|too many messages on the server|exceeding (?:its |their )?(?:receiving limits|mailbox quota)|disk space limit|mail file size exceeds the maximum size allowed for mail delivery|would (?:be over|exceed) the (?:allowed|maximum) (?:quota|storage)|boite du destinataire pleine|recipient overquota|would exceed (?:the )?(?:maximum )?(?:allowed )?(?:storage|quota)|over the allowed quota|quota has been exceeded|mailbox quota usage exceeded|diskspace quota|mail ?folder is full|not enough storage space in|not sufficient disk space",
    ),
    (
        Reason::MailboxFull,
        r"メールボックスがいっぱい|メールボックスが一杯|容量オーバー|容量を超え|容量超過|ボックス容量",
    ),
    // --- Size ---------------------------------------------------------
    (
        Reason::ExceedLimit,
        r"message header size exceeds|header (?:size|length) (?:exceeds|too)|exceeds? (?:the )?(?:recipient|user)(?:'s)? (?:message )?size limit",
    ),
    (
        Reason::MesgTooBig,
        r"message (?:is |was )?too (?:big|large|long)|(?:message|mail|email) (?:size|length) (?:exceeds|exceeded|is over|too large|limit)|exceeds? (?:the )?(?:maximum|fixed|max|allowed) (?:message |mail )?(?:size|length)|size (?:limit )?exceeded|maximum (?:message|mail) size|message file too big|larger than (?:the )?(?:current )?(?:system )?(?:limit|maximum)|too big for (?:the )?(?:system|recipient)|exceeded maximum inbound message size|line (?:length )?limit exceeded|exceeded the maximum incoming message size|taille limite du message",
    ),
    (Reason::MesgTooBig, r"メールサイズ|サイズが大き|サイズ制限"),
    // --- The account exists but is closed or disabled -------------------
    (
        Reason::Suspend,
        r"(?:mail ?box|account|user|recipient|address)(?:'s)? (?:\S+ ){0,2}(?:has been |is |was |are |currently )?(?:disabled|suspended|deactivated|inactive|locked|frozen|blocked by (?:the )?(?:administrator|provider)|not active|temporarily unavailable|closed|expired)",
    ),
    (
        Reason::Suspend,
        r"email account that you tried to reach is (?:disabled|inactive)|boite du destinataire (?:archivee|fermee)|user suspended|mailbox (?:currently )?(?:suspended|unavailable for this user)|account (?:has been )?(?:temporarily )?(?:disabled|suspended)|recipient (?:has been )?suspended|inactive (?:mail ?box|account|user)|(?:recipient|user)(?:'s)? account is (?:blocked|locked)|this (?:mail ?box|account) is (?:not in use|no longer (?:in use|active))",
    ),
    (
        Reason::Suspend,
        r"invalid/inactive user|deactivated mailbox|mailbox unavailable or access denied|suspend(?:ed)? the service|disabled or discontinued|account is locked|account has been (?:closed|terminated|deleted)|is currently suspended|has been suspended|temporar(?:y|ily) locked|user is terminated|archived recipient|this address no longer accepts mail|due to extended inactivity new mail is not currently being accepted|mail receiving disabled",
    ),
    // --- Moved --------------------------------------------------------
    (
        Reason::HasMoved,
        r"(?:user|recipient|mailbox|address) (?:has )?moved|has been moved|no longer (?:on|at) (?:this )?server|address (?:has )?changed|user not local;? please try|has been replaced by",
    ),
    // --- Relaying -------------------------------------------------------
    (
        Reason::NoRelaying,
        r"relay(?:ing)? (?:access )?(?:denied|not (?:permitted|allowed|authorized)|prohibited|refused)|not (?:permitted|allowed|authorized) to relay|unable to relay|(?:we|i) do not relay|no relaying|relay not permitted|not a gateway|relaying mail to \S+ is not allowed|relay (?:is )?not allowed|not configured to relay|e-?mail address is not verified|insecure (?:mail )?relay|(?:isn't|is not) in my list of allowed rcpthosts?|we don't handle mail for|not an open relay|not local host|specified domain is not allowed|requires authentication when attempting to send to a non-local",
    ),
    // --- Authentication of the sender -----------------------------------
    (
        Reason::AuthFailure,
        r"(?-u:\b)spf(?-u:\b).{0,40}(?:fail|reject|not (?:pass|authori))|(?:fail|reject)\S*.{0,20}(?-u:\b)spf(?-u:\b)|(?-u:\b)dkim(?-u:\b).{0,40}(?:fail|invalid|reject|not)|(?-u:\b)dmarc(?-u:\b)|sender policy framework|authentication (?:check )?fail(?:ed|ure)? (?:for|of) (?:the )?sender|not pass(?:ed)? (?:spf|dkim|dmarc)|bad spf|is not authorized to send (?:email|mail) on behalf|(?:doesn't|does not) meet the (?:required )?authentication (?:level|requirements)|per its? spf record|inspect your spf settings",
    ),
    // --- Reverse DNS -------------------------------------------------------
    (
        Reason::RequirePtr,
        r"reverse (?:dns|lookup|name|hostname|dns lookup|address)|(?-u:\b)ptr(?-u:\b)|(?-u:\b)rdns(?-u:\b)|cannot find your (?:reverse )?hostname|cannot resolve your (?:address|hostname)|unresolvable (?:address|host|hostname)|client host rejected: cannot find|no (?:reverse|dns) (?:record|name) for|(?:ip )?name lookup failed|ip (?:address )?has no (?:name|hostname)|hostname.{0,20}(?:does not|doesn't) (?:match|resolve)|unverif(?:y|i)able (?:sending )?(?:ip|host)|mismatches (?:the )?client ip|(?:does not|doesn't) match (?:the )?(?:client|connecting) ip|forward dns entry does not point to the sending ip|unresolvable relay host name",
    ),
    // --- The address does not exist ------------------------------------
    (
        Reason::UserUnknown,
        r"user(?:name)? (?:is )?unknown|unknown (?:user|recipient|mailbox|address|local[- ]?part|account|e-?mail address)|no such (?:user|mailbox|recipient|address|account|local user|person|e-?mail)|(?:user|recipient|mailbox|address|account|addressee|e-?mail address|local[- ]?part)(?:'s)? (?:name )?(?:does not|doesn't|do not|did not) exist|(?:user|recipient|mailbox|address|account|addressee)(?: name)? (?:was |is )?not (?:found|known|existing|exist|listed|valid)|invalid (?:recipient|mailbox|user|address|e-?mail address|account)|(?:recipient|mailbox|user|address) (?:is )?invalid|is not a valid (?:mailbox|user|recipient|address)|not a valid (?:mailbox|recipient)|addressee unknown|bad destination (?:mailbox )?address|no mailbox here|mailbox (?:not found|unknown|does not exist|doesn't exist)|no (?:user|mailbox|account) (?:by that name|found|with that name)|unknown or illegal alias|user not local|email account that you tried to reach does not exist|undeliverable address|recipient (?:address )?rejected: (?:user|mailbox|unknown|undeliverable|no such|invalid|access denied)|recipientnotfound|recipient name is not recognized|user (?:does )?not exist|no such user here|mailbox unavailable|requested action not taken: mailbox unavailable|not our customer|address (?:lookup failed|not present)|unknown address|user doesn't have an? \S+ account|recipient not in|is not a known user|non-?existent (?:user|mailbox|recipient|address)|no valid recipients?|mailbox name not allowed|recipient (?:address )?unknown|user account (?:does not|doesn't) exist|(?-u:\b)not listed in (?:the )?(?:public )?(?:name (?:&|and) address book|domino directory|directory)",
    ),
    // The reporting MTA tells the sender to check the address itself.
    (
        Reason::UserUnknown,
        r"please (?:check|verify) (?:if|that|whether) (?:the )?(?:e-?mail |recipient'?s? )?address is (?:correct|valid|right)",
    ),
    (
        Reason::UserUnknown,
        r"#?5\.1\.0 address rejected|address unknown|bad (?:address|recipient)|bad[-_]recipient|can't accept user|destination addresses were unknown|destination server rejected recipients|e-?mail address could not be found|invalid mailbox|is not an active address at this host|no account by that name|no mail ?box (?:available|by that name)|no such person at this address|there is no one at this address|not a valid user here|not a local address|was not found in (?:the )?(?:directory|ldap|database)|recipient is not local|user'?s email name is not found|e-?mail address is wrong or no longer valid|unknown virtual user|user missing home directory|no existe (?:dicha persona|ese usuario)|resolver\.adr\.recip(?:ient)?notfound|does not exist at the organization|not in my validrcptto list|utilisateur inconnu|destinataire inconnu|nessun utente simile|(?:user|mailbox|rcpt|recipient) (?:<[^\s<>]+>|\([^\s()]+\)|[^\s<>()@]+@[^\s<>()]+) (?:does not exist|doesn't exist|was not found|unknown)|no \S+ in name directory|badrcptto|badrecipientto",
    ),
    (
        Reason::UserUnknown,
        r"宛先不明|宛先が見つかりません|ユーザーが見つかりません|ユーザが見つかりません|ユーザー?不明|存在しない(?:ユーザ|アドレス|メール)|ディレクトリには見つかりません|ディレクトリのリストにありません|該当するユーザ|受信者が見つかりません|アカウントが存在しません",
    ),
    // --- The domain does not exist ---------------------------------------
    (
        Reason::HostUnknown,
        r"host (?:or domain name )?(?:is )?(?:unknown|not found)|host \S+ not found|unknown (?:host|domain)|no such (?:host|domain)|domain (?:name )?(?:not found|does not exist|doesn't exist|is not (?:valid|registered)|unknown|not exist)|name or service not known|host not found|unrouteable domain|unrou?te?able address|the domain is not reachable|couldn't find any host|could not find any host|no (?:mail exchanger|dns|address|a) records? (?:for|found)|bad host ?/? ?domain syntax|domain (?:is )?(?:invalid|not configured)|invalid domain|recipient domain (?:not found|does not exist|must exist)|hostname not found|domain lookup failed|all relevant mx records point to non-existent hosts|does not have (?:a )?valid mx|no route to domain|mail domain mentioned in e-?mail address is unknown|all host address lookups failed permanently|recipient address rejected: unknown domain",
    ),
    // cPanel's Exim routers say this (their `cannot_route_message`) only
    // when DNS has no route for the domain: Exim's "Unrouteable address".
    (
        Reason::HostUnknown,
        r"could not deliver mail to \S+\s+the account or domain may not exist",
    ),
    // --- The recipient's own filter ----------------------------------------
    (
        Reason::Filtered,
        r"due to (?:the )?recipient'?s? (?:policy|preferences|settings|filter)|refused due to recipient preferences|(?:recipient|user) (?:has )?(?:rejected|refused|blocked) (?:your|the|this|mail|e-?mail|message|messages|sender)|only accepting mail from specific|is not accepting (?:any )?(?:mail|e-?mail)|user reject|restricted (?:sms )?e-?mail|not accepting mail from you|blocked by (?:the )?(?:recipient|user)|filtered by (?:the )?recipient|message filtered|recipient'?s? (?:mail )?filter|resolver\.rst\.notauthorized|message rejected due to user rules|refuses? to receive (?:this |your )?mail|account is protected by|not found recipient account|(?-u:\b)bounced address|受信拒否|拒否設定",
    ),
    // --- RFC compliance of the message -------------------------------------
    (
        Reason::NotCompliantRfc,
        r"(?:^|[^=;a-z])rfc ?(?:5322|2822|822|5321|2045|1123)(?:[^;0-9]|$)|not (?:rfc)? ?compliant|multiple (?:addresses in )?(?:from|to|subject|date|sender|message-id):? (?:header|field)s?|(?:missing|invalid) (?:date|message-id|from) header|header (?:is )?(?:malformed|invalid|missing)|rfcmessagenoncompliant",
    ),
    // --- Reputation ----------------------------------------------------------
    (
        Reason::BadReputation,
        r"reputation|sender score|low (?:ip )?score|poorly rated",
    ),
    // --- The envelope sender was refused --------------------------------------
    (
        Reason::Rejected,
        r"sender (?:address )?(?:rejected|refused|denied|blocked|not allowed|invalid|unknown|verify failed|verification failed)|(?:rejected|refused|blocked|denied) sender|bad sender|invalid sender|sender (?:domain|address) (?:must exist|not found|does not exist|is empty|unresolvable)|domain of sender address \S+ does not exist|mail from \S+ (?:rejected|refused)|envelope sender|(?:your|the) (?:e-?mail )?address (?:has been |is )?(?:blacklisted|blocked|rejected)|sender is on (?:a|the|our) (?:black|block)\s?list|unverified (?:sender|address)|sender .{0,40}not permitted|return path|null sender|(?-u:\b)from address(?-u:\b).{0,30}(?:invalid|rejected|not allowed)|administrative prohibition|purported responsible address|unrou?t(?:e)?able sender|permission to post|not (?:allowed|authorized|permitted) to post|sender was rejected|sending to/from an address that has been blacklisted|投稿する権限|張貼留言的權限|address rejected.{0,20}domain not found|sender .{0,30}blacklist",
    ),
    (
        Reason::Rejected,
        r"all recipient addresses rejected ?: ?access denied|badsendermx|sendernoa|backscatter protection|non-member to a members-only list|not allowed to post to this (?:mailing )?list|not member article from|without a valid sender domain|empty (?:e-?mail address|envelope senders?)|fully qualified e-?mail address required|outgoing mail suspension|not a registered gateway user|mail from not owned by user|mail ?from domain is listed|returned mail not accepted here|sender is (?:a )?spammer|sender not pre-approved|sender domain listed at|server does not accept mail from|too many spam complaints|emetteur invalide|is a dead domain|reject mail from|from: domain is invalid|provide a valid from|invalid domain, see <url:|sender (?:e-?mail )?address \S+ rejected|(?-u:\b)batv(?-u:\b).{0,30}(?:fail|invalid|no tag|defen[cs]e)|bogus mail from|no third-party dsns|unsigned dsn for|senderfilterconfig|bouncedeny|sender is in my black ?list|sender e-?mail address rejected|rule imposed mailbox access for \S+ refused|valid-address-filter|envelope blocked - |sending address blacklisted|'send mail as'",
    ),
    // --- The sending host (IP) was refused ---------------------------------
    (
        Reason::Blocked,
        r"blocked using|(?:^|[^t] )listed (?:in|on|at|by)|(?:blacklisted|blocklisted) (?:in|on|at|by)|(?-u:\b)(?:dnsbl|rbl|spamhaus|spamcop|sorbs|barracuda ?central|uceprotect|blocklist|blacklist|block list|black list)(?-u:\b)|client host .{0,60}(?:blocked|rejected|refused|denied)|(?:your|sending|connecting|client) (?:ip|host|server|mta|network)(?: address)?(?: \S+)? (?:is |has been |was )?(?:blocked|blacklisted|listed|banned|rejected|refused|denied|not allowed)|connection (?:refused|rejected|denied) (?:from|by|for|due)|not allowed to (?:connect|send)|blocked for abuse|refused to talk to me|ip (?:address )?(?:\S+ )?(?:is )?(?:blocked|blacklisted|banned|not allowed)|(?-u:\b)banned (?:sending |client )?(?:ip|host|server|network|sender)|(?:ip|host|server) (?:address )?(?:\S+ )?(?:is |has been )?banned|(?:helo|ehlo)(?: command)? rejected|no valid recipients? from|rejected because .{0,40}(?-u:\b)ip(?-u:\b)|dynamic (?:ip|address|pool)|residential|your (?:ip|host) (?:address )?(?:has been|is) (?:temporarily )?(?:deferred|rate)|service not available, closing|connection dropped",
    ),
    (
        Reason::Blocked,
        r"access from ip address \S+ blocked|bad sender ip address|connections? (?:are )?not accepted from ip|(?-u:\b)go away(?-u:\b)|hosts with dynamic ip|invalid ip for sending mail|is in a black ?list|mail server at \S+ is blocked|mail from [0-9.]+ refused|rejected based on blacklist|not currently accepting mail from your ip|on our block ?list|rejecting open proxy|sender ip address rejected|listed as abusive|looks suspiciously like (?:a )?spammer|connection reset by peer|connection was dropped by (?:the )?remote host|too many spams from your ip|your network is temporar(?:y|ily) blacklisted|we do not accept mail from (?:dynamic|hosts with dynamic)|you are not allowed to connect|you are sending spam|messages from \S+ (?:weren't|were not) sent|unwanted messages (?:have been |were )?sent from|esmtp not accepting connections|bad ip profile|host network not allowed|no access from mail server|use the smtp server of your isp|your access ip \S+ has been rejected|forbidden by your ip|(?:blocked|refused) - see http|was blocked by \S+|(?:domain|e-?mail|ip) \S+ is blacklisted|has not passed validation|requires confirmation|confirm this mail server|to submit messages to this e-mail system has been rejected|service refused, please try later",
    ),
    // A refusal that cites the connecting IP as its parameter (`IP=a.b.c.d`)
    // is about the sending host.
    (
        Reason::Blocked,
        r"(?:^|[^?&=a-z0-9_.-])ip=\s?\[?[0-9]{1,3}(?:\.[0-9]{1,3}){3}",
    ),
    // --- Content ------------------------------------------------------------
    (
        Reason::VirusDetected,
        r"(?-u:\b)virus(?-u:\b)|malware|infected|trojan|(?-u:\b)worm(?-u:\b)|phishing",
    ),
    (
        Reason::SpamDetected,
        r"(?-u:\b)spam(?:my|mer)?(?-u:\b)|(?-u:\b)junk(?-u:\b)|(?-u:\b)bulk (?:e-?mail|mail)(?-u:\b)|unsolicited|(?-u:\b)ube(?-u:\b)|(?-u:\b)uce(?-u:\b)|spam-like|looks like spam|content filter|blacklisted (?:url|link)|(?-u:\b)uribl(?-u:\b)|scored too high|message (?:content )?(?:was )?(?:classified|identified|detected) as|high probability of being|suspicious (?:content|message)|content rejected|spamassassin|spamprofiler|recurrent pattern detection|failed several antispam checks|mail content denied|unacceptable content|rejecting mail content|mail score \([0-9.]+\) over|reject bulk\.advertising|spamming not allowed|temporarily blocked by our filter",
    ),
    (
        Reason::TooManyConn,
        r"too many recipients|connection rate limit|frequency limit",
    ),
    (
        Reason::Speeding,
        r"rate limit|rate-limit|too many (?:messages|e-?mails|mails|recipients (?:from|this))|sending (?:rate|limit)|exceeded (?:the )?(?:rate|sending|daily) limit|throttl|too fast|message rate|sending quota|daily (?:user )?sending|try again slower|emails per hour|too many errors from your ip|receiving mail at a rate|over (?:the )?(?:rate|message) limit",
    ),
    (
        Reason::TooManyConn,
        r"trop de connexions|too many (?:connections|concurrent|sessions|smtp sessions|simultaneous)|connection (?:count )?limit|maximum (?:number of )?connections|too many hosts",
    ),
    (
        Reason::PolicyViolation,
        r"polic(?:y|ies)|violat(?:e|es|ed|ion)|prohibited (?:attachment|file|content)|attachment.{0,40}(?:not allowed|blocked|rejected|prohibited)|(?:file|attachment) type|executable|not allowed (?:content|attachment)|disallowed|forbidden|blocked because (?:its|the) content|(?:illegal|prohibited|unsafe|banned|dangerous) (?:attachment|file|content)|organizational settings|closed mailing list|not subscribed to this group|mass mailer|do not accept messages containing images|posts without solving a captcha|message given low priority",
    ),
    (
        Reason::ContentError,
        r"duplicate (?:header|message-id)|header (?:error|syntax)|(?:invalid|bad|illegal) (?:header|mime|character|charset|encoding)|improper use of 8-bit|8-?bit (?:data|characters)|mime (?:error|format)|too many (?:received|hops)? ?headers|too many \x22received\x22 headers|message (?:has|contains) (?:invalid|bad) (?:header|content)|line too long|malformed|bare (?:lf|cr)|improperly-formatted binary content|unnecessary base64 encoding",
    ),
    (
        Reason::SecurityError,
        r"unauthenticated (?:e-?mail|senders?)|smtp authentication|authentication (?:is )?required|must (?:be )?authenticat|(?:tls|ssl|starttls|encryption) (?:is )?required|must issue a starttls|requires? (?:tls|encryption)|certificate|not authori[sz]ed|unauthori[sz]ed|security (?:error|violation)|spoof|impersonat|authentication failed|forged|authentication failure|authentication credentials invalid|not subscribed to ses|authentication turned on in your e-?mail client|authentification (?:requise|invalide)",
    ),
    // --- The destination system -------------------------------------------
    (
        Reason::SystemFull,
        r"(?:disk|file ?system|spool|queue|partition) (?:is )?full|insufficient system (?:storage|resources)|not enough (?:free )?(?:disk|system) ?space|out of (?:disk )?space|no space left|system (?:storage|resources) (?:exceeded|low)|mail ?system (?:is )?full",
    ),
    (
        Reason::MailerError,
        r"command (?:died|failed|output|exited)|mailer (?:error|failure)|(?-u:\b)procmail(?-u:\b)|(?-u:\b)pipe to(?-u:\b)|exit (?:code|status)|program (?:failed|exited)|(?-u:\b)x-unix(?-u:\b)|unknown mailer error|mail\.local|delivery program",
    ),
    (
        Reason::NetworkError,
        r"timed? ?out|timeout|connection (?:refused|reset|closed|lost|was dropped|dropped|failed)|no route to host|network (?:is )?unreachable|host (?:is )?unreachable|host not reachable|could not connect|couldn't connect|unable to connect|lost connection|conversation with .{0,80} timed out|(?:dns|name server|nameserver) (?:timeout|lookup|error|failure|problem)|temporary (?:dns|name) (?:lookup|resolution)|too many hops|hop count exceeded|mail (?:loops?|looping) back|(?:routing |mail )?loop (?:detected|count)|network error|malformed or unexpected name server reply|host name lookup failure|dns records for the destination computer could not be found|mail forwarding loop for|message looping|routing loop|unable to resolve route|unrou?te?able mail domain",
    ),
    (
        Reason::SystemError,
        r"delivery to (?:file|pipe) forbidden|local delivery failed|lmtp error after|local (?:error|problem|configuration error)|system (?:error|failure|problem)|internal (?:server )?(?:error|failure|problem)|server (?:error|failure|configuration)|queue (?:file )?(?:write )?error|service (?:is |currently )?(?:temporarily )?unavailable|temporary local problem|i/o error|input/output error|unable to (?:create|open|write|deliver)|can(?:'|no)t (?:create|open|write)|cannot (?:create|open|write)|resources? (?:temporarily )?unavailable|out of memory|mail ?system (?:error|failure)|system config(?:uration)? error|remote server is misconfigured|interrupted system call|there is no mdb|forwarding loop broken|would create a mail loop|loop was found in the mail exchanger|could not load drd|encountered an error while being processed",
    ),
    (
        Reason::SyntaxError,
        r"angle-brackets nested too deep|expected word or \x22<\x22|domain missing in source-routed address|syntax error|command (?:unrecognized|not (?:recognized|implemented|understood))|unrecognized command|bad sequence of commands|invalid (?:command|argument|parameter)|parameter not (?:recognized|implemented)|unsupported option|improper (?:sequence|use) of commands?",
    ),
    (
        Reason::Expired,
        r"(?:delivery|retry|queue) (?:time|timeout|period|lifetime) (?:has )?(?:expired|exceeded|reached)|retry timeout exceeded|retry time not reached for any host after a long failure period|(?:it )?has not been collected after|message expired after sitting in (?:the )?queue|message timed out|not reachable within the allowed queue period|has been frozen|was frozen on arrival|(?:aborted|gave up|given up) after [0-9.]+ (?:hour|day)|(?:has been|was) (?:in (?:the )?queue|queued) (?:too long|for (?:more than|over))|too long in (?:the )?queue|in the queue too long|(?:could not|couldn't|was not|not) (?:be )?deliver(?:ed)? .{0,40}(?:for|within|in|after) (?:the (?:last|past) )?[0-9]+ (?:hours|days|minutes)|(?:could not|unable to) (?:send|deliver) (?:the )?message for (?:the )?past|giving up|gave up|message expired|retry timeout exceeded|all hosts have been failing|did not accept our requests to connect|will be retried for|unable to deliver message after multiple retries|failed [0-9]+ attempts|delivery (?:expired|attempts? (?:have )?(?:failed|expired))|maximum (?:delivery )?(?:retry|time)|could not be delivered for (?:more than )?[0-9]+ days|have been failing for a long time|could not find a gateway for",
    ),
    (
        Reason::NotAccept,
        r"an mx or srv record indicated no smtp service|no host found for existing smtp connection|no mx records? (?:found|for)|doesn't receive e-?mail|does not receive e-?mail|does not accept (?:any )?mail|accepts no mail|not accepting (?:any )?(?:mail|messages)|null mx|no mail(?:s)? accepted|no mx (?:records? )?found",
    ),
    // An MX answer that cannot be used ("MX 0 ." before null-MX support
    // reads as a malformed reply): the domain publishes no mail host.
    (
        Reason::NotAccept,
        r"type=mx: malformed or unexpected name server reply",
    ),
];

/// The first (most trusted) family matching the text, with its index.
pub fn first_match(text: &str) -> Option<(Reason, usize)> {
    EACH.iter()
        .enumerate()
        .find(|(_, re)| re.is_match(text.as_bytes()))
        .and_then(|(i, _)| FAMILIES.get(i).map(|(r, _)| (*r, i)))
}

/// Wordings that can only mean "this mailbox does not exist" (as opposed to
/// the bare "user unknown", which filters and carriers also use as a
/// pretext). With an SMTP code beside them they decide even when the report
/// does not say at which SMTP stage the refusal came.
static STRONG_USER_UNKNOWN: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSetBuilder::new([
        r"no such (?:user|mailbox|recipient|account|local user|person|e-?mail address)",
        r"(?:user|recipient|mailbox|account|addressee|e-?mail address)(?:'s)? (?:name )?(?:does not|doesn't|do not|did not) exist",
        r"(?:user|mailbox|recipient|account) (?:does )?not exist",
        r"recipientnotfound",
        r"recipient name is not recognized",
        r"invalid (?:recipient|mailbox)|(?:recipient|mailbox) (?:is )?invalid",
        r"unknown (?:recipient|mailbox|local[- ]?part)",
        r"no mailbox here|is not a valid (?:mailbox|user|recipient)",
        r"email account that you tried to reach does not exist",
        r"addressee unknown|not our customer|user not local",
        r"#?5\.1\.0 address rejected|no such person at this address|there is no one at this address|no account by that name|unknown virtual user|user'?s email name is not found|e-?mail address could not be found|not a valid user here|no existe (?:dicha persona|ese usuario)",
        r"mail\.local: unknown user",
        r"resolver\.adr\.recip(?:ient)?notfound|does not exist at the organization",
        r"unable to deliver message to <[^<>\s]+>[^.<>]{0,80}\.\s*please check if address is correct",
        r"not listed in (?:the )?(?:public )?(?:name (?:&|and) address book|domino directory|directory)",
        r"宛先不明|宛先が見つかりません|ユーザーが見つかりません|ユーザが見つかりません|ユーザー?不明|ディレクトリには見つかりません|ディレクトリのリストにありません|該当するユーザ|存在しない(?:ユーザ|アドレス|メール)",
    ])
    .case_insensitive(true)
    .unicode(false)
    .build()
    .expect("static regex")
});

/// Strong wordings that still need an SMTP code beside them: relays also
/// write "recipient not found" about their own routing tables.
static STRONG_WITH_CODE: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSetBuilder::new([r"(?:mailbox|recipient|user) (?:was |is )?not found"])
        .case_insensitive(true)
        .unicode(false)
        .build()
        .expect("static regex")
});

/// Whether the text says, unmistakably, that the mailbox does not exist
/// (`has_code`: an SMTP reply or status code stands beside it).
pub fn strong_user_unknown(text: &str, has_code: bool) -> bool {
    STRONG_USER_UNKNOWN.is_match(text.as_bytes())
        || (has_code && STRONG_WITH_CODE.is_match(text.as_bytes()))
}

/// Every reason whose family matches the text, in priority order.
///
/// Each family runs as its own regex: one combined automaton over all
/// families, with their bounded repetitions, grows too many states to stay
/// in the lazy DFA's cache, and is several times slower.
pub fn all_matches(text: &str) -> Vec<Reason> {
    let mut v: Vec<Reason> = Vec::new();
    for (i, re) in EACH.iter().enumerate() {
        let Some((r, _)) = FAMILIES.get(i) else {
            continue;
        };
        if !v.contains(r) && re.is_match(text.as_bytes()) {
            v.push(*r);
        }
    }
    v
}

/// Each family compiled on its own, to quote what matched.
static EACH: LazyLock<Vec<regex::bytes::Regex>> = LazyLock::new(|| {
    FAMILIES
        .iter()
        .map(|(_, p)| {
            regex::bytes::RegexBuilder::new(p)
                .unicode(false)
                .case_insensitive(true)
                .build()
                .expect("phrase families compile")
        })
        .collect()
});

/// A short quote of the phrase that matched, for evidence strings.
pub fn quote(text: &str, index: usize) -> Option<String> {
    let re = EACH.get(index)?;
    re.find(text.as_bytes()).map(|m| {
        String::from_utf8_lossy(m.as_bytes())
            .chars()
            .take(60)
            .collect()
    })
}

/// The words of `reason`'s family that the text contains, if any.
pub fn quote_reason(text: &str, reason: Reason) -> Option<String> {
    FAMILIES
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| *r == reason)
        .find_map(|(i, _)| quote(text, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str) -> Option<Reason> {
        first_match(t).map(|x| x.0)
    }

    #[test]
    fn families_compile_and_order() {
        assert_eq!(
            r("550 5.1.1 <a@b>... User unknown"),
            Some(Reason::UserUnknown)
        );
        assert_eq!(
            r("procmail: Quota exceeded while writing \"/var/mail/x\" 550 Can't create output"),
            Some(Reason::MailboxFull)
        );
        assert_eq!(r("552 Error: content rejected"), Some(Reason::SpamDetected));
        assert_eq!(r("554 User unknown"), Some(Reason::UserUnknown));
        assert_eq!(
            r("Host or domain name not found. Name service error"),
            Some(Reason::HostUnknown)
        );
        assert_eq!(
            r("ユーザー sato は Domino ディレクトリには見つかりません"),
            Some(Reason::UserUnknown)
        );
        assert_eq!(r("メールボックスがいっぱいです"), Some(Reason::MailboxFull));
        assert_eq!(r("Relay access denied"), Some(Reason::NoRelaying));
        assert_eq!(r("blocked using zen.spamhaus.org"), Some(Reason::Blocked));
        assert_eq!(
            r("Message size exceeds fixed maximum message size"),
            Some(Reason::MesgTooBig)
        );
        assert_eq!(r("connection timed out"), Some(Reason::NetworkError));
        // RFC 5322 2.1.1: a line over the server's limit is a size refusal.
        assert_eq!(r("500 Line limit exceeded"), Some(Reason::MesgTooBig));
        // Outlook.com's SC-00x family names the sending IP.
        assert_eq!(
            r("550 SC-001 Unfortunately, messages from 192.0.2.1 weren't sent."),
            Some(Reason::Blocked)
        );
        // cPanel's "cannot route" wording means DNS found no route.
        assert_eq!(
            r("The mail server could not deliver mail to a@b.test.  The account or domain may not exist, they may be blacklisted, or missing the proper dns entries."),
            Some(Reason::HostUnknown)
        );
        assert_eq!(r("No MX found for domain"), Some(Reason::NotAccept));
        // (ContentError's "malformed" matches too, but only the first-order
        // reasons, NotAccept among them, are tried before it.)
        assert!(all_matches(
            "Name service error for name=b.test type=MX: Malformed or unexpected name server reply"
        )
        .contains(&Reason::NotAccept));
        assert_eq!(
            r("554 IP=192.0.2.1 - A problem occurred."),
            Some(Reason::Blocked)
        );
        assert_eq!(
            r("Unable to deliver message to <a@b.test>. Please check if address is correct."),
            Some(Reason::UserUnknown)
        );
        assert!(strong_user_unknown(
            "Unable to deliver message to <a@b.test> (and other recipients in the same domain). Please check if address is correct.",
            false
        ));
        // The advice alone is boilerplate some reports add to any failure.
        assert!(!strong_user_unknown(
            "The remote server timed out. Please check that the address is correct.",
            true
        ));
        // A token between the words must be an address, not any word.
        assert!(
            !all_matches("451 4.3.0 recipient status unknown, try again later")
                .contains(&Reason::UserUnknown)
        );
        assert!(all_matches("550 user <a@b.test> does not exist").contains(&Reason::UserUnknown));
        // …but not a URL's query parameter.
        assert_eq!(
            r("550 5.1.1 https://postmaster.example/codes?ip=192.0.2.1#rcp"),
            None
        );
        assert!(all_matches(
            "552-5.7.0 Our system detected an illegal attachment on your message."
        )
        .contains(&Reason::PolicyViolation));
        assert_eq!(r("hello there"), None);
    }
}
