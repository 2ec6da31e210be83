#!/usr/bin/env python3
"""Generates assets/catalog.tsv, shadowscope's built-in app catalog.

Inputs (all under ../shared/data relative to the crate root, see assets/CATALOG-SOURCES.md):
  * v2fly/domain-list-community `data/*`  -- service lists, category lists, rule kinds, @attrs
  * Azure Sentinel `ai_domains.csv`       -- generative-AI products, RiskType, Sanctioned
  * nDPI `ndpi_host_match.csv`            -- host patterns, app names, nDPI category and breed
plus the project's own curated overlay below (display names, vendors, product splits of big
vendor lists, appliance app-name aliases, a few vendor-published CIDRs).

Python 3.11 standard library only. Output is deterministic: re-running regenerates the asset
byte-identically.

Asset format (UTF-8, one record per line, fields separated by TAB, no field contains TAB/LF):
  A <id> <name> <vendor> <category> <sources,> <attrs,> <signals k=v,>   -- starts an app
  R <kind> <value> <attrs,>                    -- a match rule of the preceding app
                                                  (kind: full | domain | keyword | regexp)
  V <appliance app name>                       -- an alias of the preceding app
  I <cidr>                                     -- an IP range of the preceding app
"""

from __future__ import annotations

import csv
import os
import re
import sys
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
V2FLY = os.path.join(DATA, "v2fly-domain-list-community", "data")
SENTINEL = os.path.join(DATA, "azure-sentinel", "catalog", "ai_domains.csv")
NDPI = os.path.join(DATA, "ndpi", "ndpi_host_match.csv")
OUT = os.path.join(ROOT, "assets", "catalog.tsv")

# Labels must match `Category::label()` in src/catalog/mod.rs.
COLLAB = "Collaboration"
STORAGE = "Cloud storage"
GENAI = "Generative AI"
SOCIAL = "Social network"
MAIL = "Webmail"
COMMS = "Communication"
REMOTE = "Remote access"
VPN = "VPN / proxy"
DEV = "Developer tools"
ADS = "Ad tracking"
PROD = "Productivity"
CRM = "CRM"
MEDIA = "Media"
SEC = "Security"
CDN = "CDN / hosting"
OTHER = "Other"

# v2fly category lists -> our category, in priority order (earlier wins when a service list is
# reachable from several category lists at the same include depth).
V2FLY_CATEGORIES = [
    ("category-ai-!cn", GENAI),
    ("category-vpnservices", VPN),
    ("category-proxy-tunnels", VPN),
    ("category-remote-control", REMOTE),
    ("category-netdisk-!cn", STORAGE),
    ("category-password-management", SEC),
    ("category-social-media-!cn", SOCIAL),
    ("category-voip", COMMS),
    ("category-communication", COMMS),
    ("category-container", DEV),
    ("category-dev", DEV),
    ("category-urlshortner", OTHER),
]

NDPI_CATEGORIES = {
    "WEB": OTHER, "SOCIAL_NETWORK": SOCIAL, "STREAMING": MEDIA, "GAME": MEDIA, "VPN": VPN,
    "CLOUD": CDN, "CHAT": COMMS, "MUSIC": MEDIA, "COLLABORATIVE": COLLAB, "VIDEO": MEDIA,
    "NETWORK": OTHER, "VOIP": COMMS, "DOWNLOAD_FT": STORAGE, "SW_UPDATE": OTHER, "MAIL": MAIL,
    "MEDIA": MEDIA, "REMOTE_ACCESS": REMOTE, "VIRTUAL_ASSISTANT": OTHER, "SHOPPING": OTHER,
    "CUSTOM_CATEGORY_ADVERTISEMENT": ADS, "DATA_TRANSFER": DEV, "CYBERSECURITY": SEC,
    "ADULT_CONTENT": OTHER, "DATABASE": DEV,
}

# Display name and vendor of v2fly service lists (list id -> (name, vendor)). Lists not named
# here get a title-cased name; included lists inherit the vendor of the list that includes them.
V2FLY_NAMES = {
    "928plus": ("928Plus", ""), "addthis": ("AddThis", "Oracle"), "adobe": ("Adobe", "Adobe"),
    "adobe-activation": ("Adobe Activation", "Adobe"), "agilebits": ("1Password", "AgileBits"),
    "alibaba": ("Alibaba", "Alibaba"), "alibabacloud": ("Alibaba Cloud", "Alibaba"),
    "aliyun": ("Aliyun", "Alibaba"), "aliyun-drive": ("Aliyun Drive", "Alibaba"),
    "amap": ("Amap", "Alibaba"), "amazon": ("Amazon", "Amazon"),
    "amazontrust": ("Amazon Trust Services", "Amazon"), "amp": ("AMP Project", "Google"),
    "anaconda": ("Anaconda", "Anaconda"), "android": ("Android", "Google"),
    "anthropic": ("Anthropic", "Anthropic"), "apple": ("Apple", "Apple"),
    "apple-dev": ("Apple Developer", "Apple"), "apple-music": ("Apple Music", "Apple"),
    "apple-pki": ("Apple PKI", "Apple"), "apple-podcasts": ("Apple Podcasts", "Apple"),
    "apple-tvplus": ("Apple TV+", "Apple"), "apple-update": ("Apple Software Update", "Apple"),
    "archlinux": ("Arch Linux", "Arch Linux"), "atlassian": ("Atlassian", "Atlassian"),
    "aws": ("Amazon Web Services", "Amazon"), "aws-cn": ("AWS China", "Amazon"),
    "azure": ("Microsoft Azure", "Microsoft"), "baidu": ("Baidu", "Baidu"),
    "bing": ("Bing", "Microsoft"), "bitly": ("Bitly", "Bitly"), "bitwarden": ("Bitwarden", "Bitwarden"),
    "blogspot": ("Blogger", "Google"), "bluesky": ("Bluesky", "Bluesky"),
    "bytedance-ai-!cn": ("ByteDance AI", "ByteDance"), "canonical": ("Canonical", "Canonical"),
    "canva": ("Canva", "Canva"), "cerebras": ("Cerebras", "Cerebras"),
    "cloudflare": ("Cloudflare", "Cloudflare"), "cloudflare-cn": ("Cloudflare China", "Cloudflare"),
    "cloudflare-ipfs": ("Cloudflare IPFS", "Cloudflare"), "clubhouse": ("Clubhouse", "Clubhouse"),
    "codeberg": ("Codeberg", "Codeberg"), "comfy": ("ComfyUI", "Comfy Org"),
    "cursor": ("Cursor", "Anysphere"), "debian": ("Debian", "Debian"),
    "digitalocean": ("DigitalOcean", "DigitalOcean"), "dingtalk": ("DingTalk", "Alibaba"),
    "discord": ("Discord", "Discord"), "docker": ("Docker", "Docker"),
    "dropbox": ("Dropbox", "Dropbox"), "elevenlabs": ("ElevenLabs", "ElevenLabs"),
    "evernote": ("Evernote", "Bending Spoons"), "facebook": ("Facebook", "Meta"),
    "facebook-dev": ("Meta for Developers", "Meta"), "feishu": ("Feishu", "ByteDance"),
    "figma": ("Figma", "Figma"), "firebase": ("Firebase", "Google"), "github": ("GitHub", "Microsoft"),
    "github-copilot": ("GitHub Copilot", "Microsoft"), "gitlab": ("GitLab", "GitLab"),
    "golang": ("Go", "Google"), "google": ("Google", "Google"),
    "google-deepmind": ("Google DeepMind", "Google"), "google-play": ("Google Play", "Google"),
    "google-scholar": ("Google Scholar", "Google"),
    "google-trust-services": ("Google Trust Services", "Google"),
    "googlefcm": ("Firebase Cloud Messaging", "Google"), "groq": ("Groq", "Groq"),
    "hashicorp": ("HashiCorp", "IBM"), "heroku": ("Heroku", "Salesforce"),
    "huggingface": ("Hugging Face", "Hugging Face"), "icloud": ("iCloud", "Apple"),
    "icloudprivaterelay": ("iCloud Private Relay", "Apple"), "imdb": ("IMDb", "Amazon"),
    "instagram": ("Instagram", "Meta"), "itunes": ("iTunes", "Apple"),
    "jetbrains": ("JetBrains", "JetBrains"), "jetbrains-ai": ("JetBrains AI", "JetBrains"),
    "kaggle": ("Kaggle", "Google"), "kakao": ("Kakao", "Kakao"), "keybase": ("Keybase", "Zoom"),
    "kindle": ("Kindle", "Amazon"), "lark": ("Lark", "ByteDance"), "lark-global": ("Lark", "ByteDance"),
    "lastpass": ("LastPass", "LastPass"), "line": ("LINE", "LY Corporation"),
    "linkedin": ("LinkedIn", "Microsoft"), "liveperson": ("LivePerson", "LivePerson"),
    "mailcom": ("Mail.com", "1&1"), "manus": ("Manus", "Butterfly Effect"), "matrix": ("Matrix", "Matrix.org"),
    "mega": ("MEGA", "Mega Limited"), "messenger": ("Messenger", "Meta"),
    "microsoft": ("Microsoft", "Microsoft"), "microsoft-dev": ("Microsoft Developer", "Microsoft"),
    "microsoft-pki": ("Microsoft PKI", "Microsoft"), "mongodb": ("MongoDB", "MongoDB"),
    "msn": ("MSN", "Microsoft"), "naver": ("Naver", "Naver"), "netlify": ("Netlify", "Netlify"),
    "ngrok": ("ngrok", "ngrok"), "nordvpn": ("NordVPN", "Nord Security"),
    "notion": ("Notion", "Notion Labs"), "npmjs": ("npm", "Microsoft"), "ok": ("OK.ru", "VK"),
    "onedrive": ("Microsoft OneDrive", "Microsoft"), "openai": ("OpenAI", "OpenAI"),
    "oracle": ("Oracle", "Oracle"), "perplexity": ("Perplexity", "Perplexity"),
    "pikpak": ("PikPak", "PikPak"), "pinggy": ("Pinggy", "Pinggy"), "poe": ("Poe", "Quora"),
    "primevideo": ("Prime Video", "Amazon"), "protonmail": ("Proton Mail", "Proton"),
    "python": ("Python", "Python Software Foundation"), "qcloud": ("Tencent Cloud", "Tencent"),
    "redhat": ("Red Hat", "IBM"), "salesforce": ("Salesforce", "Salesforce"),
    "sentry": ("Sentry", "Functional Software"), "shopify": ("Shopify", "Shopify"),
    "signal": ("Signal", "Signal Foundation"), "slack": ("Slack", "Salesforce"),
    "sourceforge": ("SourceForge", "Slashdot Media"), "stackexchange": ("Stack Exchange", "Stack Exchange"),
    "tailscale": ("Tailscale", "Tailscale"), "teambition": ("Teambition", "Alibaba"),
    "teamspeak": ("TeamSpeak", "TeamSpeak"), "teamviewer": ("TeamViewer", "TeamViewer"),
    "telegram": ("Telegram", "Telegram"), "temp-mail": ("Temp Mail", "Temp Mail"),
    "tencent": ("Tencent", "Tencent"), "terabox": ("TeraBox", "Flextech"), "threads": ("Threads", "Meta"),
    "tiktok": ("TikTok", "ByteDance"), "tinyurl": ("TinyURL", "TinyURL"), "trello": ("Trello", "Atlassian"),
    "twitter": ("X (Twitter)", "X Corp"), "typekit": ("Adobe Fonts", "Adobe"), "ubuntu": ("Ubuntu", "Canonical"),
    "unity": ("Unity", "Unity"), "usersdrive": ("UsersDrive", "UsersDrive"), "vercel": ("Vercel", "Vercel"),
    "viber": ("Viber", "Rakuten"), "vk": ("VK", "VK"), "webex": ("Webex", "Cisco"),
    "whatsapp": ("WhatsApp", "Meta"), "windsurf": ("Windsurf", "Cognition"), "wordpress": ("WordPress", "Automattic"),
    "xai": ("xAI", "xAI"), "xbox": ("Xbox", "Microsoft"), "yandex": ("Yandex", "Yandex"),
    "youtube": ("YouTube", "Google"), "zendesk": ("Zendesk", "Zendesk"), "zoho": ("Zoho", "Zoho"),
    "zoom": ("Zoom", "Zoom"),
}

# Names for apps made from headerless domains inside category lists (registrable domain -> name).
DOMAIN_NAMES = {
    "anydesk.com": ("AnyDesk", "AnyDesk"), "nomachine.com": ("NoMachine", "NoMachine"),
    "rustdesk.com": ("RustDesk", "RustDesk"), "dashlane.com": ("Dashlane", "Dashlane"),
    "keepersecurity.com": ("Keeper", "Keeper Security"), "keeper.io": ("Keeper", "Keeper Security"),
    "authy.com": ("Authy", "Twilio"), "roboform.com": ("RoboForm", "Siber Systems"),
    "midjourney.com": ("Midjourney", "Midjourney"), "mistral.ai": ("Mistral AI", "Mistral AI"),
    "ollama.com": ("Ollama", "Ollama"), "openrouter.ai": ("OpenRouter", "OpenRouter"),
    "meta.ai": ("Meta AI", "Meta"), "devin.ai": ("Devin", "Cognition"), "dify.ai": ("Dify", "LangGenius"),
    "langchain.com": ("LangChain", "LangChain"), "lmstudio.ai": ("LM Studio", "Element Labs"),
    "duck.ai": ("Duck.ai", "DuckDuckGo"), "novelai.net": ("NovelAI", "Anlatan"),
    "sider.ai": ("Sider", "Sider"), "geph.io": ("Geph", "Gephyra"), "onlyfans.com": ("OnlyFans", "Fenix"),
    "truthsocial.com": ("Truth Social", "TMTG"), "fansly.com": ("Fansly", "Fansly"),
    "botim.me": ("BOTIM", "Astra Tech"), "git-scm.com": ("Git", "Software Freedom Conservancy"),
    "jenkins.io": ("Jenkins", "CD Foundation"), "mysql.com": ("MySQL", "Oracle"),
    "quay.io": ("Quay", "Red Hat"), "docker.io": ("Docker Hub", "Docker"),
    "gcr.io": ("Google Container Registry", "Google"), "ghcr.io": ("GitHub Container Registry", "Microsoft"),
    "azurecr.io": ("Azure Container Registry", "Microsoft"), "mobatek.net": ("MobaXterm", "Mobatek"),
    "bitvise.com": ("Bitvise SSH", "Bitvise"), "greenend.org.uk": ("PuTTY", "Simon Tatham"),
    "filezilla-project.org": ("FileZilla", "FileZilla Project"), "dev.to": ("DEV Community", "Forem"),
    "mudfish.net": ("Mudfish", "Loxch"), "h2o.ai": ("H2O.ai", "H2O.ai"), "crewai.com": ("CrewAI", "CrewAI"),
}

# nDPI app name -> existing app id (when the normalised names differ).
NDPI_ALIAS = {
    "DropBox": "dropbox", "MS_OneDrive": "onedrive", "Github": "github", "GitLab": "gitlab",
    "Teamviewer": "teamviewer", "AppleiCloud": "icloud", "AppleiTunes": "itunes", "GMail": "gmail",
    "GoogleDrive": "google-drive", "Outlook": "outlook", "Microsoft365": "office365",
    "Skype_Teams": "teams", "Teams": "teams", "Twitter": "twitter", "Facebook": "facebook",
    "FacebookMessenger": "messenger", "Instagram": "instagram", "WhatsApp": "whatsapp",
    "Telegram": "telegram", "Signal": "signal", "Slack": "slack", "Zoom": "zoom", "Webex": "webex",
    "TikTok": "tiktok", "LinkedIn": "linkedin", "YouTube": "youtube", "Viber": "viber", "Line": "line",
    "Discord": "discord", "AnyDesk": "anydesk", "NordVPN": "nordvpn", "Tailscale": "tailscale",
    "Threads": "threads", "Bluesky": "bluesky", "VK": "vk", "Salesforce": "salesforce",
    "Microsoft": "microsoft", "Azure": "azure", "Google": "google", "Apple": "apple",
    "Amazon": "amazon", "AmazonAWS": "aws", "Cloudflare": "cloudflare", "Yandex": "yandex",
    "Xbox": "xbox", "iCloudPrivateRelay": "icloudprivaterelay", "DingTalk": "dingtalk",
    "KakaoTalk": "kakao", "Yahoo": "yahoo", "GoogleDocs": "google-docs", "GoogleMeet": "google-meet",
    "GoogleChat": "google-chat", "WhatsAppFiles": "whatsapp", "YouTubeUpload": "youtube",
    "CloudflareWarp": "cloudflare-warp", "Alibaba": "alibaba", "WindowsUpdate": "windows-update",
}

NDPI_NAMES = {
    "AmazonVideo": "Prime Video", "NetFlix": "Netflix", "eBay": "eBay", "SinaWeibo": "Sina Weibo",
    "DoH_DoT": "DNS over HTTPS/TLS", "DNScrypt": "DNSCrypt", "BitTorrent": "BitTorrent",
    "HotspotShield": "Hotspot Shield", "OperaVPN": "Opera VPN", "TunnelBear": "TunnelBear",
    "ProtonVPN": "Proton VPN", "SurfShark": "Surfshark", "PrivateInternetAccess": "Private Internet Access",
    "CactusVPN": "CactusVPN", "Windscribe": "Windscribe", "Mullvad": "Mullvad VPN", "Tor": "Tor",
    "Psiphon": "Psiphon", "Softether": "SoftEther VPN", "UbuntuONE": "Ubuntu One", "YandexDisk": "Yandex Disk",
    "YandexMail": "Yandex Mail", "YandexMetrika": "Yandex Metrica", "YandexDirect": "Yandex Direct",
    "Pastebin": "Pastebin", "ApplePush": "Apple Push", "AppleSiri": "Siri", "AppleStore": "App Store",
    "AppleTVPlus": "Apple TV+", "PlayStore": "Google Play Store", "GoogleMaps": "Google Maps",
    "GoogleServices": "Google Services", "GoogleClassroom": "Google Classroom",
    "GoogleCloud": "Google Cloud", "WindowsUpdate": "Windows Update", "DisneyPlus": "Disney+",
    "AdobeConnect": "Adobe Connect", "HuaweiCloud": "Huawei Cloud", "FbookReelStory": "Facebook Reels",
    "ClickHouse": "ClickHouse", "GoTo": "GoTo", "Fuze": "Fuze", "LastFM": "Last.fm",
    "AmazonAlexa": "Alexa", "GeForceNow": "GeForce NOW", "RiotGames": "Riot Games",
    "EpicGames": "Epic Games", "ElectronicArts": "Electronic Arts", "IHeartRadio": "iHeartRadio",
    "SiriusXMRadio": "SiriusXM", "TuneIn": "TuneIn", "WorldOfWarcraft": "World of Warcraft",
    "AccuWeather": "AccuWeather", "DataSaver": "Google Data Saver", "Cybersec": "Cybersecurity vendors",
    "TeslaServices": "Tesla Services", "AdultContent": "Adult content", "NetEaseGames": "NetEase Games",
    "GaijinEntertainment": "Gaijin Entertainment", "PathofExile": "Path of Exile",
    "TES_Online": "The Elder Scrolls Online", "CoD_Mobile": "Call of Duty Mobile", "iQIYI": "iQIYI",
    "OCSP": "OCSP responders", "EAQ": "EAQ", "OCS": "OCS", "IFLIX": "iflix", "Dazn": "DAZN",
    "DirecTV": "DirecTV", "HBO": "HBO Max", "1kxun": "1kxun", "Tencentvideo": "Tencent Video",
    "YandexMusic": "Yandex Music", "YandexMarket": "Yandex Market", "YandexCloud": "Yandex Cloud",
}

# Tracker domains of nDPI's generic ADS_Analytic_Track app -> (app id, name, vendor).
TRACKERS = {
    "scorecardresearch.com": ("scorecardresearch", "Scorecard Research", "Comscore"),
    "chartbeat.com": ("chartbeat", "Chartbeat", "Chartbeat"), "chartbeat.net": ("chartbeat", "Chartbeat", "Chartbeat"),
    "appsflyer.com": ("appsflyer", "AppsFlyer", "AppsFlyer"), "appsflyersdk.com": ("appsflyer", "AppsFlyer", "AppsFlyer"),
    "criteo.com": ("criteo", "Criteo", "Criteo"), "criteo.net": ("criteo", "Criteo", "Criteo"),
    "taboola.com": ("taboola", "Taboola", "Taboola"), "hotjar.com": ("hotjar", "Hotjar", "Contentsquare"),
    "mixpanel.com": ("mixpanel", "Mixpanel", "Mixpanel"), "newrelic.com": ("new-relic", "New Relic", "New Relic"),
    "adnxs.com": ("xandr", "Xandr", "Microsoft"), "pubmatic.com": ("pubmatic", "PubMatic", "PubMatic"),
    "pubmatic.co.jp": ("pubmatic", "PubMatic", "PubMatic"), "openx.net": ("openx", "OpenX", "OpenX"),
    "openx.com": ("openx", "OpenX", "OpenX"), "servedbyopenx.com": ("openx", "OpenX", "OpenX"),
    "rubiconproject.com": ("magnite", "Magnite (Rubicon Project)", "Magnite"),
    "addthis.com": ("addthis", "AddThis", "Oracle"), "addthisedge.com": ("addthis", "AddThis", "Oracle"),
    "flurry.com": ("flurry", "Flurry Analytics", "Flurry"), "adjust.com": ("adjust", "Adjust", "AppLovin"),
    "applovin.com": ("applovin", "AppLovin", "AppLovin"), "inmobi.com": ("inmobi", "InMobi", "InMobi"),
    "ads-twitter.com": ("twitter-ads", "X Ads", "X Corp"), "mopub.com": ("mopub", "MoPub", "AppLovin"),
    "assets.adobedtm.com": ("adobe-experience-cloud", "Adobe Experience Cloud", "Adobe"),
    "commerce.adobedtm.com": ("adobe-experience-cloud", "Adobe Experience Cloud", "Adobe"),
}

# Major, established vendors (curated): a General-group signal in the risk model.
MAJOR_VENDORS = {
    "Microsoft", "Google", "Amazon", "Apple", "Salesforce", "Adobe", "Oracle", "IBM", "Cisco",
    "Atlassian", "Dropbox", "Box", "Zoom", "Meta", "Slack", "SAP", "ServiceNow", "Workday",
}

# Curated products and overrides. Rules here take precedence over every source for the same
# rule; `rules` entries use v2fly syntax (`domain`, `full:`, `keyword:`, `regexp:`).
CURATED = [
    dict(id="box", name="Box", vendor="Box", category=STORAGE,
         rules=["box.com", "box.net", "boxcdn.net", "boxcloud.com"], aliases=["box", "box-base", "Box"]),
    dict(id="wetransfer", name="WeTransfer", vendor="WeTransfer", category=STORAGE,
         rules=["wetransfer.com", "wetransfer.net", "we.tl"], aliases=["wetransfer", "wetransfer-base"]),
    dict(id="mega", category=STORAGE, aliases=["mega", "mega-base", "MEGA"]),
    dict(id="dropbox", category=STORAGE, aliases=["dropbox", "dropbox-base", "dropbox-uploading",
         "dropbox-downloading", "Dropbox", "Dropbox_File.Upload", "Dropbox_File.Download"]),
    dict(id="onedrive", category=STORAGE, aliases=["ms-onedrive", "ms-onedrive-base",
         "ms-onedrive-uploading", "Microsoft.OneDrive", "Microsoft.OneDrive_File.Upload", "OneDrive"]),
    dict(id="google-drive", name="Google Drive", vendor="Google", category=STORAGE,
         rules=["drive.google.com", "docs.googleusercontent.com", "drive.usercontent.google.com",
                "googledrive.com"], aliases=["google-drive-web", "google-drive-base", "Google.Drive", "Google Drive"]),
    dict(id="google-docs", name="Google Docs", vendor="Google", category=PROD,
         rules=["docs.google.com", "sheets.google.com", "slides.google.com"], aliases=["google-docs-base", "Google.Docs"]),
    dict(id="gmail", name="Gmail", vendor="Google", category=MAIL,
         rules=["mail.google.com", "gmail.com", "googlemail.com", "inbox.google.com"],
         aliases=["gmail", "gmail-base", "gmail-uploading", "Gmail", "Google.Gmail"]),
    dict(id="google-meet", name="Google Meet", vendor="Google", category=COMMS, rules=["meet.google.com"],
         aliases=["google-meet", "Google.Meet"]),
    dict(id="google-chat", name="Google Chat", vendor="Google", category=COMMS, rules=["chat.google.com"]),
    dict(id="google-analytics", name="Google Analytics", vendor="Google", category=ADS,
         rules=["google-analytics.com", "analytics.google.com", "googletagmanager.com", "urchin.com"],
         aliases=["google-analytics", "Google.Analytics"], signals={"breed": "TRACKER_ADS"}),
    dict(id="google-ads", name="Google Ads", vendor="Google", category=ADS,
         rules=["doubleclick.net", "googleadservices.com", "googlesyndication.com", "googleads.g.doubleclick.net"],
         aliases=["google-ads", "doubleclick"], signals={"breed": "TRACKER_ADS"}),
    dict(id="gemini", category=GENAI, aliases=["google-gemini", "google-gemini-base", "Google.Gemini", "Gemini"]),
    dict(id="google", category=OTHER),
    dict(id="outlook", name="Outlook.com", vendor="Microsoft", category=MAIL,
         rules=["outlook.com", "live.com", "outlook.live.com", "hotmail.com", "msn.com"],
         aliases=["outlook-web-online", "hotmail", "outlook.com", "Outlook.Com", "Microsoft.Outlook"]),
    dict(id="microsoft-account", name="Microsoft account", vendor="Microsoft", category=SEC,
         rules=["login.live.com", "account.live.com", "account.microsoft.com", "login.microsoftonline.com",
                "login.microsoft.com", "login.windows.net"], aliases=["ms-login", "azure-ad", "Microsoft.Login"]),
    dict(id="teams", name="Microsoft Teams", vendor="Microsoft", category=COLLAB,
         rules=["teams.microsoft.com", "teams.live.com", "teams.cloud.microsoft", "skype.com", "lync.com",
                "skypeforbusiness.com"], aliases=["ms-teams", "ms-teams-base", "Microsoft.Teams", "Skype"]),
    dict(id="office365", name="Microsoft 365", vendor="Microsoft", category=PROD,
         rules=["office.com", "office.net", "office365.com", "microsoft365.com", "sharepoint.com",
                "onenote.com", "officeapps.live.com", "m365.cloud.microsoft"],
         aliases=["ms-office365", "ms-office365-base", "sharepoint-online", "office-on-demand",
                  "Microsoft.Office.365", "Microsoft.Portal", "Office365", "Microsoft Office 365"]),
    dict(id="defender-endpoint", name="Microsoft Defender for Endpoint", vendor="Microsoft", category=SEC,
         rules=["securitycenter.windows.com", "securitycenter.microsoft.com", "wdcp.microsoft.com",
                "wdcpalt.microsoft.com", "smartscreen.microsoft.com", "smartscreen-prod.microsoft.com",
                "endpoint.security.microsoft.com", "securitycenter.windows.com"]
               + ["full:winatp-gw-%s.microsoft.com" % r for r in
                  ("eus", "cus", "weu", "neu", "uks", "ukw", "aue", "aus", "auc", "eus3", "cus3",
                   "neu3", "weu3", "usgv", "usgt", "usmt", "ins", "inc", "cane", "canc")]
               + ["keyword:winatp-gw-"], aliases=["ms-defender", "Microsoft.Defender"]),
    dict(id="azure-monitor", name="Azure Monitor (Log Analytics)", vendor="Microsoft", category=CDN,
         rules=["oms.opinsights.azure.com", "ods.opinsights.azure.com", "agentsvc.azure-automation.net",
                "monitor.azure.com"], aliases=["ms-azure-monitor"]),
    dict(id="azure", category=CDN, aliases=["ms-azure", "ms-azure-base", "Microsoft.Azure"]),
    dict(id="windows-update", name="Windows Update", vendor="Microsoft", category=OTHER,
         rules=["windowsupdate.com", "update.microsoft.com", "delivery.mp.microsoft.com"],
         aliases=["ms-update", "windows-update", "Microsoft.Windows.Update"]),
    dict(id="microsoft", category=PROD),
    dict(id="copilot", name="Microsoft Copilot", vendor="Microsoft", category=GENAI,
         aliases=["ms-copilot", "Microsoft.Copilot"]),
    dict(id="yahoo", name="Yahoo", vendor="Yahoo", category=MEDIA,
         rules=["yahoo.com", "yimg.com", "yahoo.net", "yahooapis.com", "yahoo.co.jp"], aliases=["yahoo", "Yahoo"]),
    dict(id="yahoo-mail", name="Yahoo Mail", vendor="Yahoo", category=MAIL,
         rules=["mail.yahoo.com", "mail.yahoo.net"], aliases=["yahoo-mail", "yahoo-webmail", "Yahoo.Mail"]),
    dict(id="yahoo-messenger", name="Yahoo Messenger", vendor="Yahoo", category=COMMS,
         rules=["msg.yahoo.com", "messenger.yahoo.com"], aliases=["yahoo-im", "Yahoo.Messenger"]),
    dict(id="hi5", name="hi5", vendor="hi5", category=SOCIAL, rules=["hi5.com"], aliases=["hi5"]),
    dict(id="chatgpt", aliases=["openai-chatgpt", "chatgpt", "openai-base", "ChatGPT", "OpenAI.ChatGPT", "ChatGPT"]),
    dict(id="openai", category=GENAI, aliases=["openai", "OpenAI"]),
    dict(id="claude", aliases=["anthropic-claude", "claude-base", "Claude", "Anthropic.Claude"]),
    dict(id="anthropic", category=GENAI, aliases=["anthropic", "Anthropic"]),
    dict(id="deepseek", rules=["deepseek.com"], aliases=["deepseek", "DeepSeek"]),
    dict(id="le-chat", rules=["mistral.ai"], aliases=["mistral-ai", "Mistral"]),
    dict(id="perplexity", aliases=["perplexity-ai", "Perplexity"]),
    dict(id="facebook", category=SOCIAL, aliases=["facebook-base", "facebook-chat", "facebook-posting",
         "facebook-uploading", "Facebook", "Facebook_Post"]),
    dict(id="instagram", category=SOCIAL, aliases=["instagram-base", "instagram-posting"]),
    dict(id="linkedin", category=SOCIAL, aliases=["linkedin-base", "linkedin-posting", "LinkedIn"]),
    dict(id="twitter", category=SOCIAL, aliases=["twitter-base", "twitter-posting", "Twitter"]),
    dict(id="tiktok", category=SOCIAL, aliases=["tiktok", "tiktok-base", "TikTok"]),
    dict(id="slack", category=COLLAB, aliases=["slack-base", "slack-uploading", "Slack"]),
    dict(id="zoom", category=COMMS, aliases=["zoom-base", "zoom-meeting", "Zoom"]),
    dict(id="webex", category=COMMS, aliases=["webex-base", "webex", "Cisco.Webex"]),
    dict(id="notion", category=PROD, aliases=["notion-base", "Notion"]),
    dict(id="atlassian", category=COLLAB, aliases=["jira-base", "confluence-base", "Atlassian.Jira", "Atlassian.Confluence"]),
    dict(id="trello", category=COLLAB, aliases=["trello-base", "Trello"]),
    dict(id="salesforce", category=CRM, aliases=["salesforce-base", "Salesforce"]),
    dict(id="zendesk", category=CRM, aliases=["zendesk-base", "Zendesk"]),
    dict(id="zoho", category=CRM, aliases=["zoho-base", "Zoho"]),
    dict(id="hubspot", name="HubSpot", vendor="HubSpot", category=CRM, rules=["hubspot.com", "hs-analytics.net",
         "hubspotusercontent.com"], aliases=["hubspot", "HubSpot"]),
    dict(id="github", category=DEV, aliases=["github-base", "github-uploading", "GitHub", "github"]),
    dict(id="gitlab", category=DEV, aliases=["gitlab-base", "GitLab"]),
    dict(id="ngrok", category=VPN, aliases=["ngrok", "ngrok-base"]),
    dict(id="pastebin", category=DEV, aliases=["pastebin", "Pastebin"]),
    dict(id="anydesk", category=REMOTE, aliases=["anydesk", "AnyDesk"]),
    dict(id="teamviewer", category=REMOTE, aliases=["teamviewer", "teamviewer-base", "TeamViewer"]),
    dict(id="logmein", name="LogMeIn", vendor="GoTo", category=REMOTE, rules=["logmein.com", "logme.in",
         "logmeinrescue.com"], aliases=["logmein", "LogMeIn"]),
    dict(id="splashtop", name="Splashtop", vendor="Splashtop", category=REMOTE, rules=["splashtop.com"],
         aliases=["splashtop", "Splashtop"]),
    dict(id="nordvpn", category=VPN, aliases=["nordvpn", "NordVPN"]),
    dict(id="tor", category=VPN, aliases=["tor", "tor2web", "Tor", "Proxy.Tor"]),
    dict(id="expressvpn", name="ExpressVPN", vendor="Kape Technologies", category=VPN,
         rules=["expressvpn.com", "xvservice.net"], aliases=["expressvpn", "ExpressVPN"]),
    dict(id="bittorrent", category=OTHER, aliases=["bittorrent", "BitTorrent"]),
    dict(id="icloud", category=STORAGE, aliases=["icloud-base", "icloud-drive", "Apple.iCloud"]),
    dict(id="aliyun-drive", category=STORAGE), dict(id="yandexdisk", category=STORAGE),
    dict(id="ubuntuone", category=STORAGE), dict(id="evernote", category=PROD), dict(id="canva", category=PROD),
    dict(id="figma", category=COLLAB, aliases=["figma-base"]), dict(id="lark", category=COLLAB),
    dict(id="lark-global", category=COLLAB), dict(id="feishu", category=COLLAB),
    dict(id="teambition", category=COLLAB), dict(id="yandexmetrika", category=ADS),
    dict(id="protonmail", category=MAIL, aliases=["protonmail", "Proton.Mail"]), dict(id="mailcom", category=MAIL),
    dict(id="vercel", category=CDN), dict(id="netlify", category=CDN), dict(id="heroku", category=CDN),
    dict(id="digitalocean", category=CDN), dict(id="cloudflare", category=CDN), dict(id="qcloud", category=CDN),
    dict(id="alibabacloud", category=CDN), dict(id="oracle", category=CDN),
    dict(id="asana", name="Asana", vendor="Asana", category=COLLAB, rules=["asana.com", "app.asana.com"],
         aliases=["asana", "asana-base", "Asana"]),
    dict(id="monday", name="monday.com", vendor="monday.com", category=COLLAB, rules=["monday.com"],
         aliases=["monday", "monday.com"]),
    dict(id="miro", name="Miro", vendor="Miro", category=COLLAB, rules=["miro.com", "realtimeboard.com"],
         aliases=["miro", "Miro"]),
    dict(id="airtable", name="Airtable", vendor="Airtable", category=COLLAB, rules=["airtable.com"],
         aliases=["airtable", "Airtable"]),
    dict(id="smartsheet", name="Smartsheet", vendor="Smartsheet", category=COLLAB, rules=["smartsheet.com"],
         aliases=["smartsheet", "Smartsheet"]),
    dict(id="basecamp", name="Basecamp", vendor="37signals", category=COLLAB, rules=["basecamp.com"],
         aliases=["basecamp"]),
    dict(id="pcloud", name="pCloud", vendor="pCloud", category=STORAGE, rules=["pcloud.com", "pcloud.link"],
         aliases=["pcloud", "pCloud"]),
    dict(id="mediafire", name="MediaFire", vendor="MediaFire", category=STORAGE, rules=["mediafire.com"],
         aliases=["mediafire", "MediaFire"]),
    dict(id="zoho-mail", name="Zoho Mail", vendor="Zoho", category=MAIL, rules=["mail.zoho.com", "mail.zoho.eu"],
         aliases=["zoho-mail", "Zoho.Mail"]),
    dict(id="gmx", name="GMX Mail", vendor="1&1", category=MAIL, rules=["gmx.com", "gmx.net", "gmx.de"],
         aliases=["gmx-mail", "GMX"]),
    dict(id="telegram", category=COMMS, aliases=["telegram-base", "telegram", "Telegram"],
         cidrs=["91.108.4.0/22", "91.108.8.0/22", "91.108.12.0/22", "91.108.16.0/22", "91.108.20.0/22",
                "91.108.56.0/22", "149.154.160.0/20", "2001:67c:4e8::/48", "2001:b28:f23d::/48"]),
    dict(id="github", cidrs=["140.82.112.0/20", "192.30.252.0/22", "185.199.108.0/22", "143.55.64.0/20"]),
    dict(id="google-public-dns", name="Google Public DNS", vendor="Google", category=OTHER,
         rules=["dns.google"], cidrs=["8.8.8.8/32", "8.8.4.4/32", "2001:4860:4860::8888/128",
                                      "2001:4860:4860::8844/128"]),
    dict(id="cloudflare-dns", name="Cloudflare DNS (1.1.1.1)", vendor="Cloudflare", category=OTHER,
         rules=["one.one.one.one", "cloudflare-dns.com"], cidrs=["1.1.1.1/32", "1.0.0.1/32",
                                                                 "2606:4700:4700::1111/128"]),
]

# Sentinel products -> stable ids (otherwise slug(product)).
SENTINEL_IDS = {"ChatGPT": "chatgpt", "Claude": "claude", "Gemini": "gemini", "DeepSeek": "deepseek",
                "Le Chat": "le-chat", "Microsoft Copilot": "copilot", "Perplexity": "perplexity",
                "Poe": "poe", "Hugging Face": "huggingface", "Grok": "grok", "Cursor": "cursor",
                "Windsurf": "windsurf", "ElevenLabs": "elevenlabs", "GitHub Copilot": "github-copilot",
                "Midjourney": "midjourney", "OpenRouter": "openrouter", "Meta AI": "meta-ai"}

# Broad vendor lists whose rules a curated product split may take over.
UMBRELLA = {"microsoft", "google", "amazon", "apple", "yahoo", "alibaba", "tencent", "yandex", "facebook"}

PRIO_CURATED, PRIO_SENTINEL, PRIO_V2FLY, PRIO_NDPI = 0, 1, 2, 3
MULTI_SUFFIX = {"co.uk", "org.uk", "com.cn", "net.cn", "co.jp", "com.au", "co.kr", "com.br", "com.tw",
                "com.hk", "co.nz", "co.in", "ne.jp", "or.jp"}


@dataclass
class App:
    id: str
    name: str
    vendor: str
    category: str = ""
    cat_rank: tuple = (99, 99)
    sources: set = field(default_factory=set)
    attrs: set = field(default_factory=set)
    signals: dict = field(default_factory=dict)
    aliases: list = field(default_factory=list)
    cidrs: list = field(default_factory=list)
    order: int = 0


def slug(s: str) -> str:
    s = s.replace("-!cn", "").replace("!", "")
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def registrable(host: str) -> str:
    parts = host.split(".")
    if len(parts) >= 3 and ".".join(parts[-2:]) in MULTI_SUFFIX:
        return ".".join(parts[-3:])
    return ".".join(parts[-2:])


def title(list_id: str) -> str:
    return " ".join(w.capitalize() for w in list_id.replace("-!cn", "").split("-"))


class Builder:
    def __init__(self) -> None:
        self.apps: dict[str, App] = {}
        # (kind, value) -> (priority, specificity, seq, app id, attrs)
        self.rules: dict[tuple[str, str], tuple] = {}
        self.seq = 0

    def app(self, app_id: str, name: str, vendor: str) -> App:
        if app_id not in self.apps:
            self.apps[app_id] = App(app_id, name, vendor or name, order=len(self.apps))
        return self.apps[app_id]

    def set_category(self, app: App, category: str, rank: tuple) -> None:
        if rank < app.cat_rank:
            app.category, app.cat_rank = category, rank

    def rule(self, app_id: str, kind: str, value: str, attrs: list, prio: int, spec: int = 0) -> None:
        self.seq += 1
        key = (kind, value)
        cand = (prio, -spec, self.seq, app_id, tuple(sorted(set(attrs))))
        cur = self.rules.get(key)
        if cur is None or cand[:3] < cur[:3]:
            self.rules[key] = cand


def parse_rule(text: str) -> tuple[str, str, list] | None:
    """One v2fly line (comment already stripped) -> (kind, value, attrs)."""
    parts = text.split()
    if not parts:
        return None
    head, attrs = parts[0], [p[1:] for p in parts[1:] if p.startswith("@") and len(p) > 1]
    for prefix, kind in (("full:", "full"), ("domain:", "domain"), ("keyword:", "keyword"),
                         ("regexp:", "regexp"), ("regex:", "regexp"), ("include:", "include")):
        if head.startswith(prefix):
            value = head[len(prefix):]
            return kind, value if kind == "regexp" else value.lower(), attrs
    return "domain", head.lower(), attrs


def load_v2fly() -> dict[str, list]:
    lists = {}
    for name in sorted(os.listdir(V2FLY)):
        entries = []  # (kind, value, attrs, section)
        section = None
        with open(os.path.join(V2FLY, name), encoding="utf-8") as f:
            for raw in f:
                line = raw.strip()
                if not line:
                    section = None
                    continue
                if line.startswith("#"):
                    text = line[1:].strip()
                    if section is None and text and ":" not in text and len(text.split()) <= 3 \
                            and not text.startswith("*"):
                        section = text
                    continue
                r = parse_rule(line.split("#", 1)[0])
                if r:
                    entries.append((*r, section))
        lists[name] = entries
    return lists


def v2fly(b: Builder) -> None:
    lists = load_v2fly()
    service = [n for n in lists if not n.startswith("category-")]
    parents: dict[str, list] = {}
    for n in service:
        for kind, value, _, _ in lists[n]:
            if kind == "include":
                parents.setdefault(value, []).append(n)

    def depth(n: str, seen=()) -> int:  # how deep in include chains: deeper = more specific
        ps = [p for p in parents.get(n, []) if p not in seen]
        return 0 if not ps else 1 + max(depth(p, seen + (n,)) for p in ps)

    def vendor_of(n: str, seen=()) -> str:
        if n in V2FLY_NAMES and V2FLY_NAMES[n][1]:
            return V2FLY_NAMES[n][1]
        for p in parents.get(n, []):
            if p not in seen:
                return vendor_of(p, seen + (n,))
        return V2FLY_NAMES.get(n, (title(n), ""))[0]

    for n in service:
        name, _ = V2FLY_NAMES.get(n, (title(n), ""))
        app = b.app(slug(n), name, vendor_of(n))
        app.sources.add("v2fly:" + n)
        spec = depth(n)
        for kind, value, attrs, _ in lists[n]:
            if kind == "include":
                continue
            target = app
            if "ads" in attrs:  # @ads rules are the vendor's ad/analytics endpoints
                target = b.app(slug(n) + "-ads", name + " Ads", app.vendor)
                target.sources.add("v2fly:" + n + "@ads")
                b.set_category(target, ADS, (0, 0))
                target.signals["breed"] = "TRACKER_ADS"
            target.attrs.update(attrs)
            b.rule(target.id, kind, value, attrs, PRIO_V2FLY, spec)

    for rank, (cat_list, category) in enumerate(V2FLY_CATEGORIES):
        # Category reach through include chains: every list reached gets the category.
        frontier, seen, d = [cat_list], {cat_list}, 0
        while frontier:
            nxt = []
            for n in frontier:
                for kind, value, attrs, _ in lists.get(n, []):
                    if kind != "include" or value in seen:
                        continue
                    seen.add(value)
                    nxt.append(value)
                    if not value.startswith("category-"):
                        b.set_category(b.apps[slug(value)], category, (d, rank))
                        b.apps[slug(value)].sources.add("v2fly:" + cat_list)
            frontier, d = nxt, d + 1
        # Direct rules in category lists become apps: one per "# Name" section, else one per
        # registrable domain. Nested category lists are handled by their own iteration.
        for kind, value, attrs, section in lists[cat_list]:
            if kind == "include":
                continue
            if section:
                app_id, name, vendor = slug(section), section, section
            else:
                reg = registrable(value) if kind in ("domain", "full") else cat_list
                name, vendor = DOMAIN_NAMES.get(reg, (reg.split(".")[0].capitalize(), ""))
                app_id = slug(name) if reg in DOMAIN_NAMES else slug(reg)
                if kind == "regexp":
                    app_id, name, vendor = slug(cat_list) + "-patterns", title(cat_list) + " (patterns)", ""
            app = b.app(app_id, name, vendor)
            app.sources.add("v2fly:" + cat_list)
            app.attrs.update(attrs)
            b.set_category(app, category, (0, rank))
            b.rule(app_id, kind, value, attrs, PRIO_V2FLY, 0)


def ndpi_rule(pattern: str) -> tuple[str, str]:
    p = pattern.lower()
    esc = p.replace(".", r"\.")
    if p.endswith(".") or p.endswith("-") or p.startswith("-"):
        # nDPI matches these as substrings: a trailing `.` is "any TLD", a trailing `-` a prefix.
        anchor = "" if p.startswith("-") else r"(^|\.)"
        return "regexp", anchor + esc
    return "domain", p.lstrip(".")


def ndpi(b: Builder) -> None:
    with open(NDPI, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    by_norm = {norm(a.name): a.id for a in b.apps.values()}
    by_norm.update({norm(a.id): a.id for a in b.apps.values()})
    for row in rows:
        ndpi_app, pattern = row["app_name"], row["host_pattern"]
        breed = row["breed"].replace("NDPI_PROTOCOL_", "")
        cat = row["category"].replace("NDPI_PROTOCOL_CATEGORY_", "")
        if ndpi_app == "ADS_Analytic_Track":
            reg = pattern.rstrip(".")
            app_id, name, vendor = TRACKERS.get(reg, (slug(registrable(reg)), registrable(reg), ""))
        else:
            app_id = NDPI_ALIAS.get(ndpi_app) or by_norm.get(norm(ndpi_app)) or slug(ndpi_app)
            name = NDPI_NAMES.get(ndpi_app, ndpi_app)
            vendor = ""
        app = b.app(app_id, name, vendor)
        app.sources.add("ndpi:" + ndpi_app)
        app.signals.setdefault("breed", breed)
        if ndpi_app not in app.aliases and ndpi_app != "ADS_Analytic_Track":
            app.aliases.append(ndpi_app)
        b.set_category(app, NDPI_CATEGORIES.get(cat, OTHER), (50, 0))
        kind, value = ndpi_rule(pattern)
        b.rule(app_id, kind, value, [], PRIO_NDPI, 0)


def sentinel(b: Builder) -> None:
    with open(SENTINEL, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            product, provider = row["Product"].strip(), row["Provider"].strip()
            app_id = SENTINEL_IDS.get(product) or slug(product)
            app = b.app(app_id, product, provider)
            app.name, app.vendor = product, provider
            app.sources.add("sentinel:ai_domains")
            b.set_category(app, GENAI, (-1, 0))
            app.signals["ai_risk"] = row["RiskType"].strip()
            app.signals["ai_kind"] = row["Category"].strip()
            app.signals["sanctioned"] = row["Sanctioned"].strip().lower()
            if "Business" in product or "Enterprise" in product:
                app.signals["enterprise"] = "yes"
            if row["Domain"].strip():
                b.rule(app_id, "domain", row["Domain"].strip().lower(), [], PRIO_SENTINEL, 0)
            for alias in (row.get("ProcessName") or "").split(";"):
                if alias.strip() and alias.strip() not in app.aliases:
                    app.aliases.append(alias.strip())


def curated(b: Builder) -> None:
    for c in CURATED:
        existing = b.apps.get(c["id"])
        app = b.app(c["id"], c.get("name", c["id"]), c.get("vendor", ""))
        if "name" in c:
            app.name = c["name"]
        if "vendor" in c:
            app.vendor = c["vendor"]
        if "category" in c:
            b.set_category(app, c["category"], (-2, 0))
        app.sources.add("curated" if existing is None else "curated-override")
        app.signals.update(c.get("signals", {}))
        for a in c.get("aliases", []):
            if a not in app.aliases:
                app.aliases.append(a)
        app.cidrs += [x for x in c.get("cidrs", []) if x not in app.cidrs]
        for text in c.get("rules", []):
            kind, value, attrs = parse_rule(text)
            b.rule(app.id, kind, value, attrs, PRIO_CURATED, 0)


def clean(s: str) -> str:
    return re.sub(r"[\t\r\n]", " ", s).strip()


def main() -> int:
    b = Builder()
    v2fly(b)
    ndpi(b)
    sentinel(b)
    curated(b)
    # A curated product domain also claims the rules under it that a vendor-umbrella list
    # holds (v2fly `microsoft` has `full:download.windowsupdate.com`, which would otherwise beat
    # the curated `windowsupdate.com` product by full-over-domain precedence).
    claimed = {v: c[3] for (k, v), c in b.rules.items() if k == "domain" and c[0] == PRIO_CURATED}
    for (kind, value), cand in list(b.rules.items()):
        if kind not in ("domain", "full") or cand[0] == PRIO_CURATED or cand[3] not in UMBRELLA:
            continue
        labels = value.split(".")
        for i in range(len(labels) - 1):
            owner = claimed.get(".".join(labels[i:]))
            if owner:
                b.rules[(kind, value)] = (cand[0], cand[1], cand[2], owner, cand[4])
                break
    owned: dict[str, list] = {}
    for (kind, value), (_, _, seq, app_id, attrs) in b.rules.items():
        owned.setdefault(app_id, []).append((seq, kind, value, attrs))
    pki = {a.vendor for a in b.apps.values() if re.search(r"pki|trust", a.id)}
    lines = ["# shadowscope app catalog. GENERATED by tools/gen_catalog.py from ../shared/data"
             " (see assets/CATALOG-SOURCES.md). Do not edit; re-run the script."]
    n_apps = n_rules = 0
    for app in sorted(b.apps.values(), key=lambda a: a.id):
        rules = sorted(owned.get(app.id, []))
        if not rules and not app.aliases and not app.cidrs:
            continue
        signals = dict(app.signals)
        cn = sum("cn" in attrs for _, _, _, attrs in rules)
        if len(rules) >= 3 and cn * 5 >= len(rules) * 4:  # >= 80 % of its rules are @cn
            signals["cn"] = "majority"
        if app.vendor in MAJOR_VENDORS:
            signals["major_vendor"] = "yes"
        if app.vendor in pki:
            signals["vendor_pki"] = "yes"
        sig = ",".join(f"{k}={v}" for k, v in sorted(signals.items()))
        lines.append("\t".join(["A", app.id, clean(app.name), clean(app.vendor), app.category or OTHER,
                                ",".join(sorted(app.sources)), ",".join(sorted(app.attrs)), sig]))
        n_apps += 1
        for _, kind, value, attrs in rules:
            lines.append("\t".join(["R", kind, clean(value), ",".join(attrs)]))
            n_rules += 1
        for alias in app.aliases:
            lines.append("V\t" + clean(alias))
        for cidr in app.cidrs:
            lines.append("I\t" + cidr)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {n_apps} apps, {n_rules} rules", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
