-- BILLmanager 6 tables the amoCRM module reads, as a sandbox for tests and the demo.
--
-- Only the columns the module touches (plus a few neighbours that make the data
-- realistic). Source: shared/reference/billmanager-plugin.md section 5.
--   [C] confirmed by public SQL in real modules or ISPsystem docs
--   [U] assumed: check on a real host with SHOW COLUMNS FROM <table>;
-- Everything the adapter (addon/billmgr_amocrm/billing/) assumes about a [U]
-- column is also listed in addon/billmgr_amocrm/unverified.py. The adapter never
-- assumes a [U] column of `profile` exists: it reads the columns it finds (the
-- generator's requisite_columns=False leaves them all out) and asks mgrctl for the rest.
-- Statements are separated by ";" at the end of a line (generate.py splits on it).

-- [C] Countries referenced by account.country and a payer's country_legal / country_physical.
-- Columns [U].
CREATE TABLE country (
  id        INT NOT NULL AUTO_INCREMENT,
  name      VARCHAR(255) NOT NULL DEFAULT '',     -- [U] default-language name
  name_ru   VARCHAR(255) NULL,                    -- [C] pattern: localized copies name_<lang>
  name_en   VARCHAR(255) NULL,
  iso2      CHAR(2) NULL,                         -- [U]
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Providers' projects (storefronts). id, name, billurl [C]; the rest omitted.
CREATE TABLE project (
  id        INT NOT NULL AUTO_INCREMENT,
  name      VARCHAR(255) NOT NULL DEFAULT '',     -- [C]
  billurl   VARCHAR(255) NULL,                    -- [C]
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Clients. The real table also holds client groups and the provider (parent/level):
-- the module does not filter on them because their values are unverified.
CREATE TABLE account (
  id                 INT NOT NULL AUTO_INCREMENT,  -- [C]
  name               VARCHAR(255) NULL,            -- [C] display name of the client
  country            INT NULL,                     -- [C] -> country.id
  registration_date  DATETIME NULL,                -- [C]
  parent             INT NULL,                     -- [C] exists; meaning unverified
  level              INT NULL,                     -- [C] exists; meaning unverified
  PRIMARY KEY (id),
  KEY account_registration_date (registration_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Which project(s) a client belongs to.
CREATE TABLE account2project (
  account   INT NOT NULL,                         -- [C]
  project   INT NOT NULL,                         -- [C]
  PRIMARY KEY (account, project),
  KEY account2project_project (project)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Users of a client: contact data (email, phone, realname) lives here.
CREATE TABLE user (
  id        INT NOT NULL AUTO_INCREMENT,          -- [C]
  account   INT NOT NULL,                         -- [C] -> account.id
  name      VARCHAR(255) NOT NULL,                -- [C] login
  realname  VARCHAR(255) NULL,                    -- [C]
  email     VARCHAR(255) NULL,                    -- [C]
  phone     VARCHAR(255) NULL,                    -- [C]
  language  VARCHAR(16) NULL,                     -- [C]
  level     INT NOT NULL DEFAULT 16,              -- [C] 16 = client user
  enabled   VARCHAR(3) NOT NULL DEFAULT 'on',     -- [C] 'on' / 'off'
  PRIMARY KEY (id),
  UNIQUE KEY user_name (name),                    -- [U] logins are unique panel-wide
  KEY user_account (account),
  KEY user_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Payers. id, account, name, profiletype [C] (1 individual, 2 legal entity,
-- 3 sole proprietor). The requisites are [C] fields of the payer's form and of
-- `mgrctl -m billmgr -o xml profile.edit elid=N` (person, vatnum = INN, email, phone,
-- *_legal and *_physical address parts, two countries); whether they are columns here
-- is [U]. KPP and OGRN are payer parameters a provider defines per country [C], their
-- names [U] (unverified.PROFILE_PARAM_NAMES). See unverified.PROFILE_FORM_FIELDS.
CREATE TABLE profile (
  id                 INT NOT NULL AUTO_INCREMENT,  -- [C]
  account            INT NOT NULL,                 -- [C] -> account.id
  name               VARCHAR(255) NULL,            -- [C] organisation / person name
  profiletype        INT NOT NULL DEFAULT 1,       -- [C]
  person             VARCHAR(255) NULL,            -- [U] contact person (form field "person" [C])
  vatnum             VARCHAR(32) NULL,             -- [U] INN (form field "vatnum" [C])
  kpp                VARCHAR(32) NULL,             -- [U] a per-country payer parameter
  ogrn               VARCHAR(32) NULL,             -- [U] OGRN / OGRNIP, likewise
  email              VARCHAR(255) NULL,            -- [U] (form field [C])
  phone              VARCHAR(255) NULL,            -- [U] (form field [C])
  country_legal      INT NULL,                     -- [U] -> country.id (form field [C])
  postcode_legal     VARCHAR(32) NULL,             -- [U] *_legal address parts (form [C])
  city_legal         VARCHAR(255) NULL,            -- [U]
  address_legal      VARCHAR(1024) NULL,           -- [U]
  country_physical   INT NULL,                     -- [U] -> country.id (form field [C])
  postcode_physical  VARCHAR(32) NULL,             -- [U] *_physical = postal address (form [C])
  city_physical      VARCHAR(255) NULL,            -- [U]
  address_physical   VARCHAR(1024) NULL,           -- [U]
  PRIMARY KEY (id),
  KEY profile_account (account),
  KEY profile_type (profiletype, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Currencies.
CREATE TABLE currency (
  id        INT NOT NULL AUTO_INCREMENT,          -- [C]
  name      VARCHAR(255) NOT NULL DEFAULT '',     -- [C]
  iso       VARCHAR(3) NULL,                      -- [C] ISO 4217 letters
  symbol    VARCHAR(16) NULL,                     -- [C]
  code      INT NULL,                             -- [C] ISO 4217 number
  active    VARCHAR(3) NOT NULL DEFAULT 'on',     -- [C]
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Product types (vds, vhost, domain, certificate, dedic, ...).
CREATE TABLE itemtype (
  id             INT NOT NULL AUTO_INCREMENT,     -- [C]
  intname        VARCHAR(64) NOT NULL,            -- [C]
  name           VARCHAR(255) NOT NULL DEFAULT '',-- [C]
  name_ru        VARCHAR(255) NULL,               -- [C] pattern name_<lang>
  name_en        VARCHAR(255) NULL,
  orderpriority  INT NULL,                        -- [C]
  PRIMARY KEY (id),
  UNIQUE KEY itemtype_intname (intname)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Tariffs.
CREATE TABLE pricelist (
  id             INT NOT NULL AUTO_INCREMENT,     -- [C]
  itemtype       INT NOT NULL,                    -- [C] -> itemtype.id
  intname        VARCHAR(255) NULL,               -- [C]
  parent         INT NULL,                        -- [C] addons point at their tariff
  compound       VARCHAR(3) NULL,                 -- [C]
  active         VARCHAR(3) NOT NULL DEFAULT 'on',-- [C]
  orderpriority  INT NULL,                        -- [C]
  project        INT NULL,                        -- [C] -> project.id
  name           VARCHAR(255) NOT NULL DEFAULT '',-- [C]
  name_ru        VARCHAR(255) NULL,               -- [C]
  name_en        VARCHAR(255) NULL,               -- [C]
  PRIMARY KEY (id),
  KEY pricelist_itemtype (itemtype)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Services. Every column is [C]; types are [U] (dates are calendar dates).
-- status: 2 active, 3 suspended, 4 deleted [C]; 1 ordered, 5 an operation in progress [S].
CREATE TABLE item (
  id                INT NOT NULL AUTO_INCREMENT,
  pricelist         INT NOT NULL,                 -- -> pricelist.id
  account           INT NOT NULL,                 -- -> account.id
  period            INT NOT NULL DEFAULT 1,       -- months
  currency          INT NULL,                     -- -> currency.id
  status            INT NOT NULL DEFAULT 1,
  createdate        DATE NULL,
  opendate          DATE NULL,
  expiredate        DATE NULL,
  cost              DECIMAL(20,4) NULL,
  costperiod        INT NULL,
  processingmodule  INT NULL,
  parent            INT NULL,                     -- addons point at their service
  autoprolong       INT NULL,
  lastpricelist     INT NULL,
  suspenddate       DATE NULL,
  remoteid          VARCHAR(255) NULL,
  specialstatus     INT NULL,
  scheduledclose    DATE NULL,
  intvalue          INT NULL,
  price             DECIMAL(20,4) NULL,
  name              VARCHAR(255) NULL,            -- the service's name (sslstore module.cpp)
  -- [C] the suspension kinds (ISPsystem's iteminfo()); [U] their type: 'on' flags here,
  -- see unverified.SUSPEND_KIND_COLUMNS
  autosuspend       VARCHAR(3) NULL,              -- suspended by the billing (non-payment)
  employeesuspend   VARCHAR(3) NULL,              -- suspended by an employee
  abusesuspend      VARCHAR(3) NULL,              -- suspended for abuse
  PRIMARY KEY (id),
  KEY item_account (account),
  KEY item_createdate (createdate),
  KEY item_opendate (opendate),
  KEY item_expiredate (expiredate)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Per-service parameters (domain, ip, ostempl, ...). The id column is [U].
CREATE TABLE itemparam (
  id        INT NOT NULL AUTO_INCREMENT,
  item      INT NOT NULL,                         -- [C] -> item.id
  intname   VARCHAR(255) NOT NULL,                -- [C]
  value     TEXT NULL,                            -- [C]
  PRIMARY KEY (id),
  KEY itemparam_item (item, intname)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Payment methods: id and name (payment.info carries paymethod id and name).
CREATE TABLE paymethod (
  id        INT NOT NULL AUTO_INCREMENT,
  name      VARCHAR(255) NOT NULL DEFAULT '',     -- [C]
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [C] Payments: id, number, status (1 new, 2 being paid, 3 promised, 4 paid, 5 awaiting
-- refund, 6 refunded, 7 fraud, 8 initiated, 9 canceled), paymethodamount, currency, paymethod
-- (payment.info); [U] the client as a column `account` (it may be reached through
-- `subaccount`), `createdate` and `paydate` as the dates.
CREATE TABLE payment (
  id               INT NOT NULL AUTO_INCREMENT,
  account          INT NOT NULL,                  -- [U] -> account.id
  number           VARCHAR(64) NULL,              -- [C]
  paymethodamount  DECIMAL(20,4) NULL,            -- [C] the amount paid
  currency         INT NULL,                      -- [C] -> currency.id
  paymethod        INT NULL,                      -- [C] -> paymethod.id
  status           INT NOT NULL DEFAULT 1,        -- [C]
  createdate       DATETIME NULL,                 -- [U]
  paydate          DATETIME NULL,                 -- [U]
  PRIMARY KEY (id),
  KEY payment_account (account),
  KEY payment_createdate (createdate)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- [U] Which services a payment paid for (an order's payment). The module looks for this
-- table at run time and notes payments on the client's contact alone when it is absent.
CREATE TABLE payment2item (
  payment   INT NOT NULL,                         -- [U] -> payment.id
  item      INT NOT NULL,                         -- [U] -> item.id
  PRIMARY KEY (payment, item),
  KEY payment2item_item (item)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
