/* The POP3 ceiling: a "server" that does no work, to measure a POP3 client against.
 * It answers every RETR with the same 4,852-byte message from memory (two system calls
 * per RETR: read and write) and +OK to anything else; one connection at a time.
 *   gcc -O2 -o /tmp/pop3-sink bench/peers/pop3-sink.c && /tmp/pop3-sink 3299 &
 *   target/release/gannet-bench imap --imap 127.0.0.1:1 --pop3 127.0.0.1:3299 \
 *       --user x --password y --runs 5 --pop3-only
 * Loopback only (it binds 127.0.0.1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <arpa/inet.h>
int main(int argc,char**argv){
  int port=atoi(argv[1]);
  int s=socket(AF_INET,SOCK_STREAM,0);int one=1;setsockopt(s,SOL_SOCKET,SO_REUSEADDR,&one,4);
  struct sockaddr_in a={0};a.sin_family=AF_INET;a.sin_port=htons(port);a.sin_addr.s_addr=htonl(0x7f000001);
  if(bind(s,(void*)&a,sizeof a)){perror("bind");return 1;} listen(s,16);
  static char msg[8192]; int n=0; n+=sprintf(msg,"+OK 4852 octets\r\n");
  for(int i=0;i<4852/60;i++){memset(msg+n,'x',58);n+=58;msg[n++]='\r';msg[n++]='\n';}
  n+=sprintf(msg+n,".\r\n");
  for(;;){int c=accept(s,0,0);setsockopt(c,IPPROTO_TCP,TCP_NODELAY,&one,4);
    write(c,"+OK ready\r\n",11);
    char buf[4096];
    for(;;){int r=read(c,buf,sizeof buf); if(r<=0)break;
      if(!strncmp(buf,"RETR",4)) write(c,msg,n);
      else if(!strncmp(buf,"STAT",4)) write(c,"+OK 1000 4852000\r\n",18);
      else if(!strncmp(buf,"QUIT",4)) {write(c,"+OK\r\n",5);break;}
      else write(c,"+OK\r\n",5);}
    close(c);}
}
