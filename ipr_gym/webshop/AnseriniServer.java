// Anserini's searcher and analyzer in a Java process of its own, spoken to over stdin/stdout
// by ipr_gym/webshop/lucene.py (so a JVM never runs inside a Python process).
//
// Run as a single source file: java -cp anserini-fatjar.jar AnseriniServer.java
// One request per line: an operation and its arguments, tab-separated, each argument
// Base64 (UTF-8). One answer per line: "ok" and the results, or "err" and a message, each
// Base64 and tab-separated. End of input ends the process.
//
//   open   INDEX           -> ok                      (a SimpleSearcher on that index)
//   search INDEX K QUERY   -> ok DOCID...             (WebShop's top K, BM25 k1=0.9 b=0.4)
//   close  INDEX           -> ok
//   terms  TEXT            -> ok TERM...              (DefaultEnglishAnalyzer's terms)
//   byte4  N...            -> ok B...                 (SmallFloat.intToByte4, unsigned)
//   int4   B...            -> ok N...                 (SmallFloat.byte4ToInt)

import io.anserini.analysis.AnalyzerUtils;
import io.anserini.analysis.DefaultEnglishAnalyzer;
import io.anserini.search.SimpleSearcher;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.util.SmallFloat;

public class AnseriniServer {
  private static final Map<String, SimpleSearcher> searchers = new HashMap<>();
  private static Analyzer analyzer;

  private static String decode(String field) {
    return new String(Base64.getDecoder().decode(field), StandardCharsets.UTF_8);
  }

  private static String encode(String text) {
    return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
  }

  private static SimpleSearcher searcher(String index) throws Exception {
    SimpleSearcher found = searchers.get(index);
    if (found == null) {
      found = new SimpleSearcher(index);
      searchers.put(index, found);
    }
    return found;
  }

  private static List<String> answer(String op, List<String> args) throws Exception {
    List<String> out = new ArrayList<>();
    switch (op) {
      case "open":
        searcher(args.get(0));
        break;
      case "search":
        int k = Integer.parseInt(args.get(1));
        for (io.anserini.search.SimpleSearcher.Result hit : searcher(args.get(0)).search(args.get(2), k)) {
          out.add(hit.docid);
        }
        break;
      case "close":
        SimpleSearcher gone = searchers.remove(args.get(0));
        if (gone != null) {
          gone.close();
        }
        break;
      case "terms":
        if (analyzer == null) {
          analyzer = DefaultEnglishAnalyzer.newDefaultInstance();
        }
        out.addAll(AnalyzerUtils.analyze(analyzer, args.get(0)));
        break;
      case "byte4":
        for (String n : args) {
          out.add(Integer.toString(SmallFloat.intToByte4(Integer.parseInt(n)) & 0xFF));
        }
        break;
      case "int4":
        for (String b : args) {
          out.add(Integer.toString(SmallFloat.byte4ToInt((byte) Integer.parseInt(b))));
        }
        break;
      default:
        throw new IllegalArgumentException("unknown operation " + op);
    }
    return out;
  }

  public static void main(String[] argv) throws Exception {
    // the protocol owns the real stdout; anything a library prints goes to stderr
    PrintStream protocol =
        new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
    System.setOut(System.err);
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    protocol.println("ok");  // ready
    protocol.flush();
    String line;
    while ((line = in.readLine()) != null) {
      String[] fields = line.split("\t", -1);
      List<String> args = new ArrayList<>();
      for (int i = 1; i < fields.length; i++) {
        args.add(decode(fields[i]));
      }
      StringBuilder reply = new StringBuilder();
      try {
        reply.append("ok");
        for (String item : answer(fields[0], args)) {
          reply.append('\t').append(encode(item));
        }
      } catch (Exception exc) {
        reply.setLength(0);
        reply.append("err\t").append(encode(exc.toString()));
      }
      protocol.println(reply);
      protocol.flush();
    }
    for (SimpleSearcher open : searchers.values()) {
      open.close();
    }
  }
}
