/**
 * Real lines of testdata/trial_data.csv (Austin traffic-sign assets) shared by the operator tests,
 * with their fields as Python's csv module reads them (the reference the tables are checked against).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export const TRIAL_DATA_PATH = resolve(import.meta.dir, "..", "testdata", "trial_data.csv");

/** Every line of trial_data.csv (header first); the file has no trailing newline. */
export function trialDataLines(): string[] {
  return readFileSync(TRIAL_DATA_PATH, "utf8")
    .split("\n")
    .filter((l) => l.length > 0);
}

/** Line 2: a Street Name sign; the two id fields hold quoted commas. */
export const STREET_NAME_LINE =
  '"677,227","612,075",D3-1,FAIR OAKS DR,Street Name,,SIGN_GUIDE,Street Name,NE,1.0,2.0,1.0,QC Complete,,,,2021 Feb 12 12:00:00 AM,2023 Oct 04 02:09:31 PM,2024 Jan 03 03:37:54 PM,30.219262388533505,-97.79512736443228,POINT (-97.795127364432 30.219262388534)';
export const STREET_NAME_FIELDS = [
  "677,227",
  "612,075",
  "D3-1",
  "FAIR OAKS DR",
  "Street Name",
  "",
  "SIGN_GUIDE",
  "Street Name",
  "NE",
  "1.0",
  "2.0",
  "1.0",
  "QC Complete",
  "",
  "",
  "",
  "2021 Feb 12 12:00:00 AM",
  "2023 Oct 04 02:09:31 PM",
  "2024 Jan 03 03:37:54 PM",
  "30.219262388533505",
  "-97.79512736443228",
  "POINT (-97.795127364432 30.219262388534)",
];

/** Line 3: a Sign Post, empty fields next to quoted commas. */
export const SIGN_POST_LINE =
  '"77,755","40,345",,,Sign Post,,SIGN_POLE,,,1.0,2.0,1.0,QC Complete,,,,2021 Oct 29 12:00:00 AM,2022 Jun 30 02:03:59 PM,2022 Jun 30 02:57:51 PM,30.268784966854263,-97.73068880923348,POINT (-97.730688809233 30.268784966854)';
export const SIGN_POST_FIELDS = [
  "77,755",
  "40,345",
  "",
  "",
  "Sign Post",
  "",
  "SIGN_POLE",
  "",
  "",
  "1.0",
  "2.0",
  "1.0",
  "QC Complete",
  "",
  "",
  "",
  "2021 Oct 29 12:00:00 AM",
  "2022 Jun 30 02:03:59 PM",
  "2022 Jun 30 02:57:51 PM",
  "30.268784966854263",
  "-97.73068880923348",
  "POINT (-97.730688809233 30.268784966854)",
];

/** Line 66: a field with a comma AND a doubled quote inside quotes. */
export const SQUARE_POLE_LINE =
  '"82,816","82,526",P1,Square,"342: POLE, \'\'Square"", 10 ft",10 ft,SIGN_POLE,,,0.0,,1.0,QC Complete,,2022 Aug 26 07:25:00 AM,,,2022 Sep 09 05:23:09 PM,2022 Sep 09 07:21:25 PM,30.39102200568925,-97.84273291056238,POINT (-97.842732910562 30.391022005689)';
export const SQUARE_POLE_FIELDS = [
  "82,816",
  "82,526",
  "P1",
  "Square",
  "342: POLE, ''Square\", 10 ft",
  "10 ft",
  "SIGN_POLE",
  "",
  "",
  "0.0",
  "",
  "1.0",
  "QC Complete",
  "",
  "2022 Aug 26 07:25:00 AM",
  "",
  "",
  "2022 Sep 09 05:23:09 PM",
  "2022 Sep 09 07:21:25 PM",
  "30.39102200568925",
  "-97.84273291056238",
  "POINT (-97.842732910562 30.391022005689)",
];

/** Line 1: the header, no quotes at all. */
export const HEADER_LINE =
  "Sign Asset ID,Asset Location ID,MUTCD Code,Sign Message,Asset Name,Asset Size,Asset Category,Asset Sub Category,Direction Facing,Sign Mount,Asset Condition,Asset Status,QC Status,QC Type,Asset Installation Date,Asset Removal Date,Data Collection Date,Created Date,Modified Date,Latitude,Longitude,Location";

/** [line, fields] for the real lines above. */
export const REAL_LINES: [string, string[]][] = [
  [HEADER_LINE, HEADER_LINE.split(",")],
  [STREET_NAME_LINE, STREET_NAME_FIELDS],
  [SIGN_POST_LINE, SIGN_POST_FIELDS],
  [SQUARE_POLE_LINE, SQUARE_POLE_FIELDS],
];
