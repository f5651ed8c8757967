/** HY-MT1.5's 33 languages and 5 ethnic-minority and dialect variants, with the names its prompts use. */
export interface Language {
  code: string;
  english: string;
  chinese: string;
  /** One of the 5 ethnic-minority and dialect variants. */
  variant?: true;
}

export const LANGUAGES: readonly Language[] = [
  { code: 'zh', english: 'Chinese', chinese: '中文' },
  { code: 'en', english: 'English', chinese: '英语' },
  { code: 'fr', english: 'French', chinese: '法语' },
  { code: 'pt', english: 'Portuguese', chinese: '葡萄牙语' },
  { code: 'es', english: 'Spanish', chinese: '西班牙语' },
  { code: 'ja', english: 'Japanese', chinese: '日语' },
  { code: 'tr', english: 'Turkish', chinese: '土耳其语' },
  { code: 'ru', english: 'Russian', chinese: '俄语' },
  { code: 'ar', english: 'Arabic', chinese: '阿拉伯语' },
  { code: 'ko', english: 'Korean', chinese: '韩语' },
  { code: 'th', english: 'Thai', chinese: '泰语' },
  { code: 'it', english: 'Italian', chinese: '意大利语' },
  { code: 'de', english: 'German', chinese: '德语' },
  { code: 'vi', english: 'Vietnamese', chinese: '越南语' },
  { code: 'ms', english: 'Malay', chinese: '马来语' },
  { code: 'id', english: 'Indonesian', chinese: '印尼语' },
  { code: 'tl', english: 'Filipino', chinese: '菲律宾语' },
  { code: 'hi', english: 'Hindi', chinese: '印地语' },
  { code: 'zh-Hant', english: 'Traditional Chinese', chinese: '繁体中文' },
  { code: 'pl', english: 'Polish', chinese: '波兰语' },
  { code: 'cs', english: 'Czech', chinese: '捷克语' },
  { code: 'nl', english: 'Dutch', chinese: '荷兰语' },
  { code: 'km', english: 'Khmer', chinese: '高棉语' },
  { code: 'my', english: 'Burmese', chinese: '缅甸语' },
  { code: 'fa', english: 'Persian', chinese: '波斯语' },
  { code: 'gu', english: 'Gujarati', chinese: '古吉拉特语' },
  { code: 'ur', english: 'Urdu', chinese: '乌尔都语' },
  { code: 'te', english: 'Telugu', chinese: '泰卢固语' },
  { code: 'mr', english: 'Marathi', chinese: '马拉地语' },
  { code: 'he', english: 'Hebrew', chinese: '希伯来语' },
  { code: 'bn', english: 'Bengali', chinese: '孟加拉语' },
  { code: 'ta', english: 'Tamil', chinese: '泰米尔语' },
  { code: 'uk', english: 'Ukrainian', chinese: '乌克兰语' },
  { code: 'bo', english: 'Tibetan', chinese: '藏语', variant: true },
  { code: 'kk', english: 'Kazakh', chinese: '哈萨克语', variant: true },
  { code: 'mn', english: 'Mongolian', chinese: '蒙古语', variant: true },
  { code: 'ug', english: 'Uyghur', chinese: '维吾尔语', variant: true },
  { code: 'yue', english: 'Cantonese', chinese: '粤语', variant: true },
];

const BY_CODE = new Map(LANGUAGES.map((l) => [l.code.toLowerCase(), l]));

/** Case-insensitive lookup by code (zh-hant works too). */
export function language(code: string): Language | undefined {
  return BY_CODE.get(code.toLowerCase());
}

/** The Chinese side of HY-MT1.5's "ZH<=>XX" rule. */
export function isChinese(l: Language): boolean {
  return l.code === 'zh' || l.code === 'zh-Hant';
}
